//! The configuration tree: raw statements given meaning by the grammar in `schema`, merged the
//! way Junos merges them (the same container or name written twice is one node), so curly-brace
//! and `set` input build the same tree.

use std::collections::HashMap;

use super::error::{ConfigError, Origin, Pos};
use super::lexer::{Token, TokenKind};
use super::raw::{RawStatement, RawWord};
use super::schema::{self, Kind, Statement};

#[derive(Debug)]
pub struct Node {
    pub statement: &'static Statement,
    /// The name of a `Named` node, or the value of a `Leaf`/`MultiLeaf`.
    pub value: Option<Token>,
    /// Keyed values after a leaf's value (`routing-instance R`), in the grammar's order.
    pub options: Vec<(Token, Token)>,
    /// The values of a `List`.
    pub items: Vec<Token>,
    pub children: Vec<Node>,
    pub origin: Origin,
    index: HashMap<(&'static str, String), usize>,
}

const ROOT: Statement = Statement {
    keyword: "",
    kind: Kind::Container(schema::TOP),
    oneliner: false,
};

impl Node {
    fn new(statement: &'static Statement, value: Option<Token>, origin: Origin) -> Self {
        Node {
            statement,
            value,
            options: Vec::new(),
            items: Vec::new(),
            children: Vec::new(),
            origin,
            index: HashMap::new(),
        }
    }

    pub fn root() -> Self {
        static ROOT_STATEMENT: Statement = ROOT;
        Node::new(&ROOT_STATEMENT, None, Origin::default())
    }

    pub fn keyword(&self) -> &'static str {
        self.statement.keyword
    }

    pub fn value_text(&self) -> Option<&str> {
        self.value.as_ref().map(|t| t.text.as_str())
    }

    /// The origin of the value (for errors about it), else of the statement.
    pub fn value_origin(&self) -> Origin {
        match &self.value {
            Some(t) => Origin::new(t.pos, self.origin.path.clone()),
            None => self.origin.clone(),
        }
    }

    pub fn child(&self, keyword: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.keyword() == keyword)
    }

    pub fn children_with(&self, keyword: &'static str) -> impl Iterator<Item = &Node> {
        self.children.iter().filter(move |c| c.keyword() == keyword)
    }

    pub fn has(&self, keyword: &str) -> bool {
        self.child(keyword).is_some()
    }

    pub fn option(&self, key: &str) -> Option<&Token> {
        self.options
            .iter()
            .find(|(k, _)| k.text == key)
            .map(|(_, v)| v)
    }

    fn child_key(statement: &'static Statement, value: &str) -> (&'static str, String) {
        match statement.kind {
            Kind::Named(_) | Kind::MultiLeaf(_) => (statement.keyword, value.to_string()),
            _ => (statement.keyword, String::new()),
        }
    }

    fn find(&self, key: &(&'static str, String)) -> Option<usize> {
        self.index.get(key).copied()
    }

    fn insert(&mut self, key: (&'static str, String), node: Node) -> usize {
        let i = self.children.len();
        self.children.push(node);
        self.index.insert(key, i);
        i
    }
}

fn join_path(parent: &str, parts: &[&str]) -> String {
    let mut path = parent.to_string();
    for p in parts {
        if !path.is_empty() {
            path.push(' ');
        }
        path.push_str(p);
    }
    path
}

/// Builds the tree from raw statements, reporting every statement the grammar rejects.
pub fn build(statements: &[RawStatement], errors: &mut Vec<ConfigError>) -> Node {
    let mut root = Node::root();
    for s in statements.iter().filter(|s| !s.inactive) {
        if s.deactivate {
            deactivate(&s.words, schema::TOP, &mut root, errors);
        } else {
            interpret(&s.words, s.block.as_deref(), schema::TOP, &mut root, errors);
        }
    }
    root
}

/// The text that tells apart repeatable siblings: a name, or a value and its keyed options.
fn sibling_text(node: &Node) -> String {
    let mut text = node.value_text().unwrap_or_default().to_string();
    for (k, v) in &node.options {
        text.push(' ');
        text.push_str(&k.text);
        text.push(' ');
        text.push_str(&v.text);
    }
    text
}

/// Drops the statement a `deactivate` line names, with everything under it.
fn deactivate(
    words: &[RawWord],
    level: &'static [Statement],
    parent: &mut Node,
    errors: &mut Vec<ConfigError>,
) {
    let Some(RawWord::Word(first)) = words.first() else {
        let pos = words.first().map_or(Pos::default(), RawWord::pos);
        errors.push(error(
            pos,
            &parent.origin.path,
            "deactivate needs a statement",
        ));
        return;
    };
    let path = join_path(&parent.origin.path, &[&first.text]);
    let Some(statement) = schema::lookup(level, &first.text) else {
        let message = format!("unknown statement '{}'", first.text);
        errors.push(error(first.pos, &path, message));
        return;
    };
    let word_text = |w: Option<&RawWord>| match w {
        Some(RawWord::Word(t)) => Some(t.text.clone()),
        _ => None,
    };
    let (name, rest, children) = match statement.kind {
        Kind::Container(children) => (String::new(), &words[1..], Some(children)),
        Kind::Named(children) if statement.keyword == "*" => {
            (first.text.clone(), &words[1..], Some(children))
        }
        Kind::Named(children) => match word_text(words.get(1)) {
            Some(name) => (name, &words[2..], Some(children)),
            None => {
                errors.push(error(
                    first.pos,
                    &path,
                    format!("'{}' needs a name", first.text),
                ));
                return;
            }
        },
        Kind::MultiLeaf(_) => {
            let values: Vec<String> = words[1..]
                .iter()
                .filter_map(|w| word_text(Some(w)))
                .collect();
            (values.join(" "), &words[..0], None)
        }
        Kind::Leaf(_) | Kind::Flag | Kind::List | Kind::Unsupported => {
            (String::new(), &words[..0], None)
        }
    };
    let key = Node::child_key(statement, &name);
    let Some(i) = parent.find(&key) else {
        let message = "deactivate names a statement that is not set".to_string();
        errors.push(error(first.pos, &path, message));
        return;
    };
    match children {
        Some(children) if !rest.is_empty() => {
            deactivate(rest, children, &mut parent.children[i], errors);
        }
        _ => {
            parent.children.remove(i);
            parent.index = parent
                .children
                .iter()
                .enumerate()
                .map(|(j, c)| (Node::child_key(c.statement, &sibling_text(c)), j))
                .collect();
        }
    }
}

fn error(pos: Pos, path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        pos,
        path: path.to_string(),
        message: message.into(),
    }
}

fn interpret(
    words: &[RawWord],
    block: Option<&[RawStatement]>,
    level: &'static [Statement],
    parent: &mut Node,
    errors: &mut Vec<ConfigError>,
) {
    let Some(first) = words.first() else {
        return;
    };
    let first = match first {
        RawWord::Word(t) => t,
        RawWord::List(_, pos) => {
            errors.push(error(
                *pos,
                &parent.origin.path,
                "a '[ … ]' list cannot start a statement",
            ));
            return;
        }
    };
    let word = first.text.as_str();
    if schema::ANYWHERE_UNSUPPORTED.contains(&word) {
        errors.push(error(
            first.pos,
            &join_path(&parent.origin.path, &[word]),
            format!("'{word}' is a Junos statement that dyntun does not support"),
        ));
        return;
    }
    let Some(statement) = schema::lookup(level, word) else {
        let at = if parent.origin.path.is_empty() {
            "at the top level".to_string()
        } else {
            format!("under '{}'", parent.origin.path)
        };
        errors.push(error(
            first.pos,
            &join_path(&parent.origin.path, &[word]),
            format!("unknown statement '{word}' {at}"),
        ));
        return;
    };
    let path = join_path(&parent.origin.path, &[statement.keyword]);
    match statement.kind {
        Kind::Unsupported => errors.push(error(
            first.pos,
            &path,
            format!("'{word}' is a Junos statement that dyntun does not support"),
        )),
        Kind::Container(children) => {
            let key = Node::child_key(statement, "");
            let i = match parent.find(&key) {
                Some(i) => i,
                None => parent.insert(
                    key,
                    Node::new(statement, None, Origin::new(first.pos, path)),
                ),
            };
            descend(
                &words[1..],
                block,
                children,
                &mut parent.children[i],
                errors,
            );
        }
        Kind::Named(children) => {
            let (name, rest) = if statement.keyword == "*" {
                (first, &words[1..])
            } else {
                match words.get(1) {
                    Some(RawWord::Word(name)) => (name, &words[2..]),
                    other => {
                        let pos = other.map_or(first.pos, RawWord::pos);
                        errors.push(error(pos, &path, format!("'{word}' needs a name")));
                        return;
                    }
                }
            };
            let path = if statement.keyword == "*" {
                join_path(&parent.origin.path, &[&name.text])
            } else {
                join_path(&path, &[&name.text])
            };
            let key = Node::child_key(statement, &name.text);
            let i = match parent.find(&key) {
                Some(i) => i,
                None => parent.insert(
                    key,
                    Node::new(statement, Some(name.clone()), Origin::new(first.pos, path)),
                ),
            };
            descend(rest, block, children, &mut parent.children[i], errors);
        }
        Kind::Leaf(allowed) | Kind::MultiLeaf(allowed) => {
            let Some(node) = leaf_node(statement, first, words, block, allowed, &path, errors)
            else {
                return;
            };
            let key = Node::child_key(statement, &sibling_text(&node));
            match parent.find(&key) {
                Some(i) => {
                    let earlier = parent.children[i].origin.pos;
                    let what = if matches!(statement.kind, Kind::Leaf(_)) {
                        "given more than once"
                    } else {
                        "duplicate"
                    };
                    errors.push(error(
                        first.pos,
                        &path,
                        format!(
                            "'{word}' {what} (first at line {}, column {})",
                            earlier.line, earlier.col
                        ),
                    ));
                }
                None => {
                    parent.insert(key, node);
                }
            }
        }
        Kind::Flag => {
            if let Some(extra) = words.get(1) {
                errors.push(error(
                    extra.pos(),
                    &path,
                    format!("'{word}' takes no value"),
                ));
                return;
            }
            if block.is_some() {
                errors.push(error(first.pos, &path, format!("'{word}' takes no block")));
                return;
            }
            let key = Node::child_key(statement, "");
            if parent.find(&key).is_none() {
                parent.insert(
                    key,
                    Node::new(statement, None, Origin::new(first.pos, path)),
                );
            }
        }
        Kind::List => {
            if block.is_some() {
                errors.push(error(first.pos, &path, format!("'{word}' takes no block")));
                return;
            }
            let mut values: Vec<Token> = Vec::new();
            for w in &words[1..] {
                match w {
                    RawWord::Word(t) => values.push(t.clone()),
                    RawWord::List(items, _) => values.extend(items.iter().cloned()),
                }
            }
            if values.is_empty() {
                errors.push(error(
                    first.pos,
                    &path,
                    format!("'{word}' needs at least one value"),
                ));
                return;
            }
            let key = Node::child_key(statement, "");
            let i = match parent.find(&key) {
                Some(i) => i,
                None => parent.insert(
                    key,
                    Node::new(statement, None, Origin::new(first.pos, path.clone())),
                ),
            };
            let node = &mut parent.children[i];
            for v in values {
                // The list's own index holds its items, so long lists stay linear to check.
                let item_key = ("", v.text.clone());
                if node.index.contains_key(&item_key) {
                    errors.push(error(v.pos, &path, format!("'{}' listed twice", v.text)));
                } else {
                    node.index.insert(item_key, node.items.len());
                    node.items.push(v);
                }
            }
        }
    }
}

fn descend(
    rest: &[RawWord],
    block: Option<&[RawStatement]>,
    children: &'static [Statement],
    node: &mut Node,
    errors: &mut Vec<ConfigError>,
) {
    if !rest.is_empty() {
        interpret(rest, block, children, node, errors);
    } else if let Some(block) = block {
        for s in block.iter().filter(|s| !s.inactive) {
            interpret(&s.words, s.block.as_deref(), children, node, errors);
        }
    }
}

/// A leaf's node from `kw VALUE [opt VALUE]…`, or `None` after reporting what is wrong.
fn leaf_node(
    statement: &'static Statement,
    first: &Token,
    words: &[RawWord],
    block: Option<&[RawStatement]>,
    allowed: &[&str],
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Node> {
    let word = &first.text;
    if block.is_some() {
        errors.push(error(
            first.pos,
            path,
            format!("'{word}' takes a value, not a block"),
        ));
        return None;
    }
    let value = match words.get(1) {
        Some(RawWord::Word(t)) => t.clone(),
        Some(RawWord::List(_, pos)) => {
            errors.push(error(
                *pos,
                path,
                format!("'{word}' takes one value, not a list"),
            ));
            return None;
        }
        None => {
            errors.push(error(first.pos, path, format!("'{word}' needs a value")));
            return None;
        }
    };
    let mut node = Node::new(statement, Some(value), Origin::new(first.pos, path));
    let mut rest = words[2..].iter();
    while let Some(w) = rest.next() {
        let key = match w {
            RawWord::Word(t) if t.kind == TokenKind::Word && allowed.contains(&t.text.as_str()) => {
                t
            }
            other => {
                let shown = match other {
                    // Never echo what may be part of a key.
                    RawWord::Word(_) if matches!(word.as_str(), "ascii-text" | "hexadecimal") => {
                        "another word".to_string()
                    }
                    RawWord::Word(t) => format!("'{}'", t.text),
                    RawWord::List(..) => "a list".to_string(),
                };
                errors.push(error(
                    other.pos(),
                    path,
                    format!("unexpected {shown} after the value of '{word}'"),
                ));
                return None;
            }
        };
        if node.option(&key.text).is_some() {
            errors.push(error(key.pos, path, format!("'{}' given twice", key.text)));
            return None;
        }
        match rest.next() {
            Some(RawWord::Word(v)) => node.options.push((key.clone(), v.clone())),
            _ => {
                errors.push(error(
                    key.pos,
                    path,
                    format!("'{}' needs a value", key.text),
                ));
                return None;
            }
        }
    }
    Some(node)
}

impl Node {
    /// Overwrites the text of every key (`ascii-text`, `hexadecimal`) in this subtree.
    pub fn zeroize_secrets(&mut self) {
        use zeroize::Zeroize;
        if matches!(self.keyword(), "ascii-text" | "hexadecimal") {
            if let Some(v) = self.value.as_mut() {
                v.text.zeroize();
            }
        }
        for child in &mut self.children {
            child.zeroize_secrets();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::super::raw::{parse_curly, parse_set_lines};
    use super::*;

    fn curly(text: &str) -> (Node, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let raw = parse_curly(&tokenize(text).0, &mut errors);
        let tree = build(&raw, &mut errors);
        (tree, errors)
    }

    #[test]
    fn blocks_merge_and_oneliners_expand() {
        let (tree, errors) = curly(
            "interfaces { ge-0/0/0 { unit 0; } }\n\
             interfaces ge-0/0/0 unit 0 family inet address 10.1.1.1/24;\n\
             interfaces ge-0/0/0 { unit 0 { family inet { address 10.1.1.2/24; } } }",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let unit = tree
            .child("interfaces")
            .and_then(|i| i.children.first())
            .and_then(|ge| ge.child("unit"))
            .unwrap();
        assert_eq!(unit.value_text(), Some("0"));
        let inet = unit.child("family").and_then(|f| f.child("inet")).unwrap();
        assert_eq!(inet.children.len(), 2);
        assert_eq!(inet.origin.path, "interfaces ge-0/0/0 unit 0 family inet");
    }

    #[test]
    fn unknown_unsupported_and_misused_statements_are_reported() {
        let (_, errors) = curly(
            "access { frobnicate; }\nsystem { host-name x; }\nservices { service-set { } }\n\
             access profile p client * ike interface-id a b;",
        );
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(errors.len(), 4, "{messages:?}");
        assert_eq!(messages[0], "unknown statement 'frobnicate' under 'access'");
        assert!(messages[1].contains("does not support"));
        assert!(messages[2].contains("needs a name"));
        assert!(messages[3].contains("unexpected 'b'"));
    }

    #[test]
    fn leaves_given_twice_are_errors_lists_accumulate() {
        let mut errors = Vec::new();
        let raw = parse_set_lines(
            &tokenize(
                "set services ipsec-vpn ike policy p proposals a\n\
                 set services ipsec-vpn ike policy p proposals [ b c ]\n\
                 set services ipsec-vpn ike policy p mode main\n\
                 set services ipsec-vpn ike policy p mode aggressive\n",
            )
            .0,
            &mut errors,
        );
        let tree = build(&raw, &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].pos.line, 4);
        let policy = tree
            .child("services")
            .and_then(|s| s.child("ipsec-vpn"))
            .and_then(|v| v.child("ike"))
            .and_then(|i| i.child("policy"))
            .unwrap();
        let items: Vec<&str> = policy
            .child("proposals")
            .unwrap()
            .items
            .iter()
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(items, ["a", "b", "c"]);
    }

    #[test]
    fn deactivate_lines_drop_what_they_name() {
        let mut errors = Vec::new();
        let raw = parse_set_lines(
            &tokenize(
                "set interfaces ams0 load-balancing-options member-interface mams-1/0/0\n\
                 set interfaces ams0 load-balancing-options member-interface mams-1/1/0\n\
                 set interfaces ge-0/0/0 unit 0 family inet\n\
                 set interfaces ge-0/0/1 unit 0 family inet\n\
                 deactivate interfaces ge-0/0/0\n\
                 deactivate interfaces ams0 load-balancing-options member-interface mams-1/0/0\n\
                 deactivate interfaces ge-0/0/9\n",
            )
            .0,
            &mut errors,
        );
        let tree = build(&raw, &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].pos.line, 7);
        let interfaces = tree.child("interfaces").unwrap();
        let names: Vec<&str> = interfaces
            .children
            .iter()
            .filter_map(|c| c.value_text())
            .collect();
        assert_eq!(names, ["ams0", "ge-0/0/1"]);
        let members = interfaces.children[0]
            .child("load-balancing-options")
            .unwrap();
        let left: Vec<&str> = members
            .children
            .iter()
            .filter_map(|c| c.value_text())
            .collect();
        assert_eq!(left, ["mams-1/1/0"]);
    }
}
