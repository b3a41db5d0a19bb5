//! Gluten's OS gate on this node, from the facts read: the release of the bundle that decides
//! (its build info's `gluten_version`), the loaders the classpath jars declare (classpath
//! order), [`os_gate::decide`], and which classpath jar holds each library the accepting loader
//! loads. Pure.

use super::facts::{GateDecision, JarFacts, LibraryResource, OsGateInputs};
use super::os_gate::{self, Decision, GateInput, GlutenRelease};
use super::spark::JARS;

/// The decision, or why there is none although `spark.gluten.loadLibFromJar` is true.
pub fn decide_gate(
    jars: &[JarFacts],
    inputs: &OsGateInputs,
    os_release: Option<&[u8]>,
) -> (Option<GateDecision>, Option<String>) {
    let readable = || jars.iter().filter(|j| j.found && j.error.is_none());
    let bundle = readable().find(|j| j.gluten && j.build_info.contains_key("gluten_version"));
    let version = bundle.and_then(|j| j.build_info.get("gluten_version"));
    let release = version.and_then(|v| GlutenRelease::from_version(v));
    let input = GateInput {
        load_lib_from_jar: inputs.load_lib_from_jar,
        os_release,
        load_lib_os: inputs.load_lib_os.as_deref(),
        load_lib_os_version: inputs.load_lib_os_version.as_deref(),
    };
    let mut declared: Vec<&str> = Vec::new();
    for l in inputs.jars.iter().flat_map(|j| j.loaders.iter()) {
        if !declared.contains(&l.as_str()) {
            declared.push(l);
        }
    }
    let decision = |outcome: Decision, release: Option<GlutenRelease>| GateDecision {
        gluten_version: version.cloned(),
        bundle: bundle.map(|j| j.path.clone()),
        gate: release.map(GlutenRelease::gate),
        loaders: match release.map(GlutenRelease::gate) {
            Some(os_gate::GlutenGate::Spi) => declared.iter().map(|s| s.to_string()).collect(),
            _ => Vec::new(),
        },
        outcome,
        found: Vec::new(),
        missing: Vec::new(),
    };
    if !inputs.load_lib_from_jar {
        return (Some(decision(Decision::NotLoading, release)), None);
    }
    let Some(release) = release else {
        // Both gates refuse an incomplete override before anything else.
        if input.load_lib_os.is_some() && input.load_lib_os_version.is_none() {
            let d = os_gate::decide(GlutenRelease::V1_7, &input, &[]);
            return (Some(decision(d, None)), None);
        }
        let why = match (bundle, version) {
            (Some(j), Some(v)) => format!(
                "{} is Gluten {v}, whose OS gate is not modelled (1.4 to 1.7 are)",
                j.path
            ),
            _ => "no Gluten bundle with a gluten_version in its gluten-build-info.properties is on the classpath".to_string(),
        };
        return (None, Some(why));
    };
    let mut d = decision(os_gate::decide(release, &input, &declared), Some(release));
    // `JniLibLoader.class.getClassLoader().getResourceAsStream(lib)`: a bundle on the JVM's
    // own classpath cannot see the jars of `spark.jars` (Spark's child loader).
    let system = bundle.is_some_and(|b| b.placement != JARS);
    let visible = |j: &&JarFacts| !(system && j.placement == JARS);
    if let Decision::Accepted { libraries, .. } = &d.outcome {
        for lib in libraries.iter() {
            match readable()
                .filter(visible)
                .find(|j| j.root_libraries.iter().any(|r| r == lib))
            {
                Some(j) => d.found.push(LibraryResource {
                    library: lib.to_string(),
                    jar: j.path.clone(),
                }),
                None => d.missing.push(lib.to_string()),
            }
        }
    }
    (Some(d), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gluten_runtime::facts::JarLoaders;

    const DEBIAN_12: &[u8] = b"NAME=\"Debian GNU/Linux\"\nVERSION=\"12 (bookworm)\"\n";

    fn bundle(version: &str) -> JarFacts {
        JarFacts {
            path: "/opt/gluten/gluten.jar".into(),
            found: true,
            gluten: true,
            build_info: [("gluten_version".to_string(), version.to_string())].into(),
            ..JarFacts::default()
        }
    }

    fn inputs(on: bool) -> OsGateInputs {
        OsGateInputs {
            jars: vec![JarLoaders {
                jar: "/opt/gluten/gluten.jar".into(),
                loaders: GlutenRelease::V1_7
                    .bundled_loaders()
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            }],
            load_lib_from_jar: on,
            ..OsGateInputs::default()
        }
    }

    #[test]
    fn off_is_not_loading_and_on_finds_each_library_in_a_jar() {
        let jars = vec![bundle("1.7.0")];
        let (d, u) = decide_gate(&jars, &inputs(false), Some(DEBIAN_12));
        assert_eq!(d.unwrap().outcome, Decision::NotLoading);
        assert_eq!(u, None);

        let (d, _) = decide_gate(&jars, &inputs(true), Some(DEBIAN_12));
        let d = d.unwrap();
        let Decision::Accepted { loader, libraries } = &d.outcome else {
            panic!("{d:?}")
        };
        assert_eq!(loader, "org.apache.gluten.spi.SharedLibraryLoaderDebian12");
        assert_eq!(d.loaders.len(), 9);
        assert!(d.found.is_empty());
        assert_eq!(d.missing.len(), libraries.len());

        // A third-party jar holding all but the first library.
        let mut third = JarFacts {
            path: "/opt/gluten/thirdparty.jar".into(),
            found: true,
            root_libraries: libraries[1..].iter().map(|s| s.to_string()).collect(),
            ..JarFacts::default()
        };
        let (d, _) = decide_gate(
            &[bundle("1.7.0"), third.clone()],
            &inputs(true),
            Some(DEBIAN_12),
        );
        let d = d.unwrap();
        assert_eq!(d.missing, [libraries[0]]);
        assert_eq!(d.found[0].jar, "/opt/gluten/thirdparty.jar");
        // In spark.jars it is out of reach of a bundle on the JVM's classpath.
        third.placement = JARS.into();
        let mut b = bundle("1.7.0");
        b.placement = "spark.executor.extraClassPath".into();
        let (d, _) = decide_gate(&[b.clone(), third.clone()], &inputs(true), Some(DEBIAN_12));
        assert_eq!(d.unwrap().missing.len(), libraries.len());
        b.placement = JARS.into();
        let (d, _) = decide_gate(&[b, third.clone()], &inputs(true), Some(DEBIAN_12));
        assert_eq!(d.unwrap().missing.len(), 1);
        // An unreadable jar holds nothing.
        third.error = Some("bad zip".into());
        let (d, _) = decide_gate(&[bundle("1.7.0"), third], &inputs(true), Some(DEBIAN_12));
        assert_eq!(d.unwrap().missing.len(), libraries.len());
    }

    #[test]
    fn no_modelled_release_is_undecided_but_an_incomplete_override_still_fails() {
        let (d, u) = decide_gate(&[bundle("1.3.0")], &inputs(true), Some(DEBIAN_12));
        assert_eq!(d, None);
        assert_eq!(
            u.as_deref(),
            Some(
                "/opt/gluten/gluten.jar is Gluten 1.3.0, whose OS gate is not modelled (1.4 to 1.7 are)"
            )
        );
        let (d, u) = decide_gate(&[], &inputs(true), None);
        assert_eq!(d, None);
        assert!(u.unwrap().starts_with("no Gluten bundle"));
        let mut i = inputs(true);
        i.load_lib_os = Some("Ubuntu".into());
        let (d, _) = decide_gate(&[], &i, None);
        assert!(matches!(
            d.unwrap().outcome,
            Decision::OverrideIncomplete { .. }
        ));
    }
}
