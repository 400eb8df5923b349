//! Metavariable expansion (`$name`, `${name}`), as Ceph's `md_config_t::_expand_meta`.

/// Expands `$var` / `${var}` in `value`. `lookup(var)` gives a variable's (unexpanded)
/// text and whether it must itself be expanded; unknown variables are left as written.
/// `depth` guards against loops (`a = $b`, `b = $a`): past it the text is kept.
pub(crate) fn expand(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<(String, bool)>,
    depth: usize,
) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let (name, end) = if chars.get(i + 1) == Some(&'{') {
            match chars[i + 2..].iter().position(|&c| c == '}') {
                Some(p) => (
                    chars[i + 2..i + 2 + p].iter().collect::<String>(),
                    i + 3 + p,
                ),
                None => (String::new(), i + 1),
            }
        } else {
            let n = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            (
                chars[i + 1..i + 1 + n].iter().collect::<String>(),
                i + 1 + n,
            )
        };
        match (name.is_empty(), lookup(&name)) {
            (false, Some((text, recurse))) => {
                if recurse && depth > 0 {
                    out.push_str(&expand(&text, lookup, depth - 1));
                } else {
                    out.push_str(&text);
                }
                i = end;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars() {
        let l = |n: &str| match n {
            "cluster" => Some(("ceph".to_owned(), false)),
            "run_dir" => Some(("/run/$cluster".to_owned(), true)),
            "loop" => Some(("$loop".to_owned(), true)),
            _ => None,
        };
        assert_eq!(expand("$cluster.x", &l, 8), "ceph.x");
        assert_eq!(expand("${cluster}x$clusterx", &l, 8), "cephx$clusterx");
        assert_eq!(expand("$run_dir/a $$ $", &l, 8), "/run/ceph/a $$ $");
        assert_eq!(expand("$loop", &l, 3), "$loop");
    }
}
