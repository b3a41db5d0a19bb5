//! Bearer token files, shared by the agent's push (which sends the token) and the aggregator
//! (which checks it): the first line of the file, trimmed.

use std::path::Path;

/// The first line of a token file, trimmed; an error naming the file when it is unreadable or
/// its first line is empty.
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!("{}: no token on the first line", path.display()));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_trimmed_and_empty_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "  s3cret \nignored\n").unwrap();
        assert_eq!(read_token(&p).unwrap(), "s3cret");
        std::fs::write(&p, "\nx\n").unwrap();
        let e = read_token(&p).unwrap_err();
        assert!(
            e.contains("no token") && e.contains(&p.display().to_string()),
            "{e}"
        );
        assert!(read_token(&dir.path().join("missing")).is_err());
    }
}
