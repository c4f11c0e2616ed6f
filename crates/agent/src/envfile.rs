//! `environmentFiles`. On ECS each `value` is an S3 object ARN; berth has
//! no S3, so a value names a file on the agent's host (an absolute path,
//! or a `file://` URL). The format is ECS's: one `NAME=VALUE` per line,
//! `#` starts a comment line, blank lines are skipped, and nothing is
//! unquoted or expanded.

/// The variables in the file, in order.
pub fn read(value: &str) -> Result<Vec<(String, String)>, String> {
    if value.starts_with("arn:") {
        return Err(format!(
            "environment file {value}: berth reads environment files from the agent's host, \
             not from S3; give an absolute path"
        ));
    }
    let path = value.strip_prefix("file://").unwrap_or(value);
    if !path.starts_with('/') {
        return Err(format!(
            "environment file {value}: the path must be absolute"
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read environment file {path}: {e}"))?;
    Ok(parse(&text))
}

pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_values_and_skips_comments() {
        let vars = parse("# a comment\nA=1\n\nB=x=y\nC=\n  \nnoequals\n");
        assert_eq!(
            vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "".into())
            ]
        );
    }

    #[test]
    fn refuses_s3_and_relative_paths() {
        assert!(read("arn:aws:s3:::bucket/env").unwrap_err().contains("S3"));
        assert!(read("relative.env").unwrap_err().contains("absolute"));
    }
}
