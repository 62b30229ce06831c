//! The normalised configuration as text: curly-brace form (Junos `show configuration`) or `set`
//! lines (`show configuration | display set`). Either parses back to the same tree.

use super::schema::Kind;
use super::tree::Node;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayFormat {
    Curly,
    Set,
}

/// Quotes a value when the lexer would otherwise split or misread it.
pub fn quote(text: &str) -> String {
    let plain = !text.is_empty()
        && !text.starts_with('#')
        && !text.starts_with("/*")
        && !text.ends_with(':')
        && text
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '{' | '}' | '[' | ']' | ';' | '"' | '\\'));
    if plain {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

pub fn render(root: &Node, format: DisplayFormat) -> String {
    let mut out = String::new();
    match format {
        DisplayFormat::Curly => {
            for child in &root.children {
                write_curly(child, 0, &mut out);
            }
        }
        DisplayFormat::Set => {
            let mut prefix = Vec::new();
            for child in &root.children {
                write_set(child, &mut prefix, &mut out);
            }
        }
    }
    out
}

/// The words that name a node inside its parent (`unit 0`, `ge-0/0/0`, `family`).
fn head(node: &Node) -> String {
    match (&node.statement.kind, node.value_text()) {
        (Kind::Named(_), Some(name)) if node.keyword() == "*" => quote(name),
        (Kind::Named(_), Some(name)) => format!("{} {}", node.keyword(), quote(name)),
        _ => node.keyword().to_string(),
    }
}

/// A statement without a block, as written before its `;` (or at the end of a set line).
fn terminal_text(node: &Node) -> Option<String> {
    match node.statement.kind {
        Kind::Leaf(_) | Kind::MultiLeaf(_) => {
            let mut text = format!(
                "{} {}",
                node.keyword(),
                quote(node.value_text().unwrap_or(""))
            );
            for (k, v) in &node.options {
                text.push(' ');
                text.push_str(&k.text);
                text.push(' ');
                text.push_str(&quote(&v.text));
            }
            Some(text)
        }
        Kind::Flag => Some(node.keyword().to_string()),
        Kind::List => {
            let items: Vec<String> = node.items.iter().map(|t| quote(&t.text)).collect();
            Some(if items.len() == 1 {
                format!("{} {}", node.keyword(), items[0])
            } else {
                format!("{} [ {} ]", node.keyword(), items.join(" "))
            })
        }
        _ if node.children.is_empty() => Some(head(node)),
        _ if node.statement.oneliner && node.children.len() == 1 => {
            terminal_text(&node.children[0]).map(|inner| format!("{} {inner}", head(node)))
        }
        _ => None,
    }
}

fn write_curly(node: &Node, depth: usize, out: &mut String) {
    let indent = "    ".repeat(depth);
    if let Some(text) = terminal_text(node) {
        out.push_str(&indent);
        out.push_str(&text);
        out.push_str(";\n");
        return;
    }
    out.push_str(&indent);
    out.push_str(&head(node));
    out.push_str(" {\n");
    for child in &node.children {
        write_curly(child, depth + 1, out);
    }
    out.push_str(&indent);
    out.push_str("}\n");
}

fn write_set(node: &Node, prefix: &mut Vec<String>, out: &mut String) {
    let is_block = matches!(node.statement.kind, Kind::Container(_) | Kind::Named(_));
    if !is_block || node.children.is_empty() {
        out.push_str("set ");
        for p in prefix.iter() {
            out.push_str(p);
            out.push(' ');
        }
        out.push_str(&terminal_text(node).unwrap_or_else(|| head(node)));
        out.push('\n');
        return;
    }
    prefix.push(head(node));
    for child in &node.children {
        write_set(child, prefix, out);
    }
    prefix.pop();
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::super::raw::{is_set_form, parse_curly, parse_set_lines};
    use super::super::tree::build;
    use super::*;

    fn tree(text: &str) -> Node {
        let mut errors = Vec::new();
        let tokens = tokenize(text).0;
        let raw = if is_set_form(&tokens) {
            parse_set_lines(&tokens, &mut errors)
        } else {
            parse_curly(&tokens, &mut errors)
        };
        let t = build(&raw, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        t
    }

    const SAMPLE: &str = "access { profile p { client * { ike { \
        allowed-proxy-pair { remote 0.0.0.0/0 local 10.0.0.0/8; } \
        pre-shared-key ascii-text \"a b\\\"c\"; interface-id pool; } } } }\n\
        routing-options { static { route 10.9.0.0/16 next-hop 10.1.1.2; } }\n\
        dataplane { eal-options [ \"--no-huge\" -m 256 ]; pic sp-1/2/0 { cores 1; } }";

    #[test]
    fn curly_display_is_normalised_and_reparses_identically() {
        let first = render(&tree(SAMPLE), DisplayFormat::Curly);
        assert!(
            first.contains("pre-shared-key ascii-text \"a b\\\"c\";"),
            "{first}"
        );
        assert!(
            first.contains("route 10.9.0.0/16 next-hop 10.1.1.2;"),
            "{first}"
        );
        assert!(
            first.contains("eal-options [ --no-huge -m 256 ];"),
            "{first}"
        );
        assert_eq!(render(&tree(&first), DisplayFormat::Curly), first);
    }

    #[test]
    fn set_display_reparses_to_the_same_tree() {
        let set = render(&tree(SAMPLE), DisplayFormat::Set);
        assert!(
            set.contains("set access profile p client * ike interface-id pool\n"),
            "{set}"
        );
        assert_eq!(
            render(&tree(&set), DisplayFormat::Curly),
            render(&tree(SAMPLE), DisplayFormat::Curly)
        );
    }

    #[test]
    fn quoting_protects_what_the_lexer_would_split() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a;b"), "\"a;b\"");
        assert_eq!(quote("#x"), "\"#x\"");
        assert_eq!(quote("inactive:"), "\"inactive:\"");
    }
}
