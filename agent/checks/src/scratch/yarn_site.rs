//! YARN's `yarn.nodemanager.local-dirs` from a Hadoop `yarn-site.xml`: on YARN, Spark's local
//! dirs (where Gluten extracts and dlopens its native libraries) are the NodeManager's, not
//! `spark.local.dir`.

use crate::error::ParseError;
use std::path::PathBuf;

/// The key the NodeManager takes its local dirs from.
pub const LOCAL_DIRS_KEY: &str = "yarn.nodemanager.local-dirs";

/// The dirs `yarn.nodemanager.local-dirs` names in a Hadoop configuration document, or `None`
/// when the key is absent. Values are comma-separated, may be `file://` URIs and carry
/// whitespace; a `${...}` variable cannot be expanded here, so it is an error naming the value
/// rather than a guess. The last definition of the key wins, as in Hadoop's `Configuration`.
pub fn parse_yarn_site(text: &str) -> Result<Option<Vec<PathBuf>>, ParseError> {
    let doc = roxmltree::Document::parse(text)
        .map_err(|e| ParseError::new(format!("not a Hadoop configuration document: {e}")))?;
    let root = doc.root_element();
    if root.tag_name().name() != "configuration" {
        return Err(ParseError::new(format!(
            "root element is {}, expected configuration",
            crate::error::excerpt(root.tag_name().name())
        )));
    }
    let mut value = None;
    for prop in root
        .children()
        .filter(|n| n.is_element() && n.has_tag_name("property"))
    {
        let child = |tag: &str| {
            prop.children()
                .find(|n| n.is_element() && n.has_tag_name(tag))
                .map(|n| n.text().unwrap_or("").trim().to_string())
        };
        if child("name").as_deref() == Some(LOCAL_DIRS_KEY) {
            value = Some(child("value").unwrap_or_default());
        }
    }
    let Some(value) = value else {
        return Ok(None);
    };
    let mut dirs = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry.contains("${") {
            return Err(ParseError::new(format!(
                "{LOCAL_DIRS_KEY} entry {} has a variable the agent cannot expand; set \
                 [scratch] dirs to the NodeManager's local dirs",
                crate::error::excerpt(entry)
            )));
        }
        let path = entry.strip_prefix("file://").unwrap_or(entry);
        if !path.starts_with('/') {
            return Err(ParseError::new(format!(
                "{LOCAL_DIRS_KEY} entry {} is not an absolute local path",
                crate::error::excerpt(entry)
            )));
        }
        dirs.push(PathBuf::from(path));
    }
    Ok(Some(dirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = r#"<?xml version="1.0"?>
<?xml-stylesheet type="text/xsl" href="configuration.xsl"?>
<configuration>
  <!-- the NodeManager's disks -->
  <property>
    <name>yarn.nodemanager.resource.memory-mb</name>
    <value>245760</value>
  </property>
  <property>
    <name>yarn.nodemanager.local-dirs</name>
    <value>
      /data01/hadoop/yarn/local, file:///data02/hadoop/yarn/local,
    </value>
    <final>true</final>
  </property>
</configuration>
"#;

    #[test]
    fn local_dirs_are_read_trimmed_and_file_uris_become_paths() {
        let d = parse_yarn_site(SITE).unwrap().unwrap();
        assert_eq!(
            d,
            [
                PathBuf::from("/data01/hadoop/yarn/local"),
                PathBuf::from("/data02/hadoop/yarn/local")
            ]
        );
    }

    #[test]
    fn an_absent_key_is_none_and_the_last_definition_wins() {
        assert_eq!(
            parse_yarn_site(
                "<configuration><property><name>a</name><value>b</value></property></configuration>"
            )
            .unwrap(),
            None
        );
        let two = "<configuration>\
            <property><name>yarn.nodemanager.local-dirs</name><value>/a</value></property>\
            <property><name>yarn.nodemanager.local-dirs</name><value>/b</value></property>\
            </configuration>";
        assert_eq!(
            parse_yarn_site(two).unwrap().unwrap(),
            [PathBuf::from("/b")]
        );
    }

    #[test]
    fn malformed_documents_and_unexpandable_values_are_clear_errors() {
        let e = parse_yarn_site("<configuration><property>")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("not a Hadoop configuration document"), "{e}");
        let e = parse_yarn_site("<settings/>").unwrap_err().to_string();
        assert!(e.contains("\"settings\", expected configuration"), "{e}");
        let var = "<configuration><property><name>yarn.nodemanager.local-dirs</name>\
            <value>${hadoop.tmp.dir}/nm-local-dir</value></property></configuration>";
        let e = parse_yarn_site(var).unwrap_err().to_string();
        assert!(
            e.contains("${hadoop.tmp.dir}/nm-local-dir") && e.contains("[scratch] dirs"),
            "{e}"
        );
        let rel = "<configuration><property><name>yarn.nodemanager.local-dirs</name>\
            <value>local</value></property></configuration>";
        assert!(
            parse_yarn_site(rel)
                .unwrap_err()
                .to_string()
                .contains("not an absolute")
        );
    }
}
