//! Bearer tokens from files: the first line, trimmed. Read by the push client (the agent's side)
//! and the aggregator (the server's side), so neither imports the other.

use std::path::Path;

/// The first line of a token file, trimmed; an error when unreadable or empty.
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(format!("{}: no token on the first line", path.display()));
    }
    Ok(token)
}
