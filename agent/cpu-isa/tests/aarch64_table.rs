//! Table tests: every core the table knows built for, against every real machine in
//! tests/data/aarch64, plus Gluten's build rule and host identity on those machines.

use cpu_isa::aarch64::*;
use std::path::PathBuf;

struct Host {
    name: &'static str,
    features: FlagSet,
    midr: Midr,
    soc_id: Option<String>,
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

fn hosts() -> Vec<Host> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/aarch64");
    [
        "graviton2",
        "graviton3",
        "graviton4",
        "ampere-altra",
        "kunpeng920",
        "grace",
    ]
    .into_iter()
    .map(|name| {
        let path = dir.join(format!("{name}.cpuinfo"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let midr =
            field(&text, "midr_el1").unwrap_or_else(|| panic!("{}: no midr_el1", path.display()));
        Host {
            name,
            features: host_features(&text),
            midr: parse_midr(midr).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            soc_id: field(&text, "soc_id").map(str::to_string),
        }
    })
    .collect()
}

fn host(name: &str) -> Host {
    hosts().into_iter().find(|h| h.name == name).unwrap()
}

fn missing_on(option: &str, host: &Host) -> Vec<&'static str> {
    let t = target_of(&format!("GNU C++17 12.2.0 {option} -O2 -g"))
        .unwrap_or_else(|| panic!("{option}: no target"));
    missing(&t.required, &host.features).into_iter().collect()
}

/// Every known core against every fixture: the whole matrix, printed, with the cases whose
/// outcome matters to Gluten asserted.
#[test]
fn every_core_on_every_machine() {
    let hosts = hosts();
    let mut runs = 0;
    for cpu in known_cpus() {
        let line: Vec<String> = hosts
            .iter()
            .map(|h| {
                let m = missing_on(&format!("-mcpu={cpu}"), h);
                runs += m.is_empty() as usize;
                format!(
                    "{}:{}",
                    h.name,
                    if m.is_empty() {
                        "ok".into()
                    } else {
                        m.join(",")
                    }
                )
            })
            .collect();
        println!("{cpu:24} {}", line.join(" "));
    }
    println!("{runs} core x machine pairs run");
    // A core's own build runs on a machine with that core.
    for (cpu, h) in [
        ("neoverse-n1", "graviton2"),
        ("neoverse-n1", "ampere-altra"),
        ("neoverse-v1", "graviton3"),
        ("zeus", "graviton3"),
        ("neoverse-512tvb", "graviton3"),
        ("neoverse-v2", "graviton4"),
        ("demeter", "graviton4"),
        ("neoverse-v2", "grace"),
        ("tsv110", "kunpeng920"),
        ("generic", "kunpeng920"),
        ("cortex-a53", "graviton2"),
        ("cortex-a72", "kunpeng920"),
    ] {
        assert_eq!(
            missing_on(&format!("-mcpu={cpu}"), &host(h)),
            Vec::<&str>::new(),
            "{cpu} on {h}"
        );
    }
}

#[test]
fn neoverse_v2_build_fails_on_graviton2_naming_what_is_missing() {
    let m = missing_on("-mcpu=neoverse-v2", &host("graviton2"));
    for f in [
        "sve",
        "sve2",
        "svebitperm",
        "i8mm",
        "bf16",
        "svei8mm",
        "svebf16",
        "frint",
        "sb",
        "jscvt",
        "fcma",
        "asimdfhm",
    ] {
        assert!(m.contains(&f), "{f} not in {m:?}");
    }
    // Hint-space and non-codegen features are not required.
    for f in ["rng", "paca", "bti", "ssbs", "dit", "flagm"] {
        assert!(!m.contains(&f), "{f} in {m:?}");
    }
}

#[test]
fn arm_builds_on_the_other_machines() {
    // Neoverse V1 (Graviton 3) build: no SVE2 on Graviton 3 is fine, SVE missing on Graviton 2.
    assert_eq!(
        missing_on("-mcpu=neoverse-v1", &host("graviton2")),
        [
            "asimdfhm", "bf16", "fcma", "i8mm", "jscvt", "sve", "svebf16", "svei8mm"
        ]
    );
    assert_eq!(
        missing_on("-mcpu=neoverse-v1", &host("graviton4")),
        Vec::<&str>::new()
    );
    // Neoverse N2 build (apache/gluten #11954: Arrow built with it) on Kunpeng 920.
    let m = missing_on("-mcpu=neoverse-n2", &host("kunpeng920"));
    assert!(m.contains(&"sve2") && m.contains(&"lrcpc"), "{m:?}");
    // Neoverse N1 build on Kunpeng 920: only LDAPR (lrcpc) is missing.
    assert_eq!(
        missing_on("-mcpu=neoverse-n1", &host("kunpeng920")),
        ["lrcpc"]
    );
    // Gluten's Grace build needs SM4 in SVE2, which Graviton 4 lacks.
    assert_eq!(
        missing_on(GLUTEN_GRACE, &host("graviton4")),
        ["sm3", "sm4", "svesm4"]
    );
    assert_eq!(missing_on(GLUTEN_GRACE, &host("grace")), Vec::<&str>::new());
    // The generic build runs everywhere.
    for h in hosts() {
        assert_eq!(
            missing_on(GLUTEN_GENERIC, &h),
            Vec::<&str>::new(),
            "generic on {}",
            h.name
        );
    }
}

#[test]
fn gluten_rule_and_identity_on_the_machines() {
    let expect = [
        ("graviton2", "neoverse-n1", "-mcpu=neoverse-n1"),
        ("graviton3", "neoverse-v1", "-mcpu=neoverse-v1"),
        ("graviton4", "neoverse-v2", "-mcpu=neoverse-v2"),
        ("ampere-altra", "neoverse-n1", "-mcpu=neoverse-n1"),
        ("kunpeng920", "tsv110", GLUTEN_GENERIC),
        ("grace", "neoverse-v2", GLUTEN_GRACE),
    ];
    for (name, core, rule) in expect {
        let h = host(name);
        assert_eq!(core_name(&h.midr), Some(core), "{name}");
        assert_eq!(core_label(&h.midr), core, "{name}");
        assert_eq!(
            gluten_build_target(&h.midr, h.soc_id.as_deref()),
            rule,
            "{name}"
        );
        // Gluten's build on a machine runs on that machine.
        assert_eq!(missing_on(rule, &h), Vec::<&str>::new(), "{rule} on {name}");
    }
    assert_eq!(host("graviton2").midr, host("ampere-altra").midr);
    assert_eq!(
        machine_from_soc_id("jep106:036b:0241\n"),
        Some(Machine::NvidiaGrace)
    );
    assert_eq!(machine_from_soc_id("jep106:0a16:0001"), None);
    let other = [
        (0x41, 0xd03, "cortex-a53"),
        (0x41, 0xd07, "cortex-a57"),
        (0x41, 0xd08, "cortex-a72"),
        (0x41, 0xd0b, "cortex-a76"),
        (0x41, 0xd49, "neoverse-n2"),
        (0xc0, 0xac3, "ampere1"),
        (0x46, 0x001, "a64fx"),
    ];
    for (implementer, part, name) in other {
        let m = Midr {
            implementer,
            variant: 0,
            part,
            revision: 0,
        };
        assert_eq!(core_name(&m), Some(name));
    }
}
