//! A light scan of a template before minijinja compiles it.
//!
//! It finds the tags (`${{ }}` or `{{ }}`, `{% %}`, `{# #}`), tells whether the template is one sole
//! interpolation (which keeps its value's type), and rewrites the few Nunjucks (JavaScript)
//! spellings minijinja has no syntax for, token by token and never inside string literals:
//!
//! - `===` / `!==` become `==` / `!=` (minijinja's equality is already strict about types);
//! - `null` becomes `none`;
//! - `x.length` becomes `x|__js_length` (string and array length, or an object's `length` key);
//! - bare object keys `{ name: 1 }` become `{ "name": 1 }`, as Nunjucks reads them;
//! - `{% elseif %}` becomes `{% elif %}`;
//! - `{% for k, v in obj %}` iterates an object's entries and `{% for x in obj %}` iterates nothing
//!   over an object, as in Nunjucks (`__js_items` / `__js_iter` filters).
//!
//! Everything else is passed through untouched: minijinja reports syntax errors itself.

/// Delimiters of one syntax: Backstage's `${{ }}` or fetch:template's cookiecutter `{{ }}`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delimiters {
    pub variable_start: &'static str,
    pub variable_end: &'static str,
    pub block_start: &'static str,
    pub block_end: &'static str,
    pub comment_start: &'static str,
    pub comment_end: &'static str,
}

pub(crate) const STANDARD: Delimiters = Delimiters {
    variable_start: "${{",
    variable_end: "}}",
    block_start: "{%",
    block_end: "%}",
    comment_start: "{#",
    comment_end: "#}",
};

pub(crate) const COOKIECUTTER: Delimiters = Delimiters {
    variable_start: "{{",
    ..STANDARD
};

/// A template after the scan.
#[derive(Debug)]
pub(crate) struct Scanned {
    /// The template to compile, with the rewrites applied.
    pub source: String,
    /// The (rewritten) expression when the template is exactly one `${{ }}` apart from comments.
    pub sole_expression: Option<String>,
}

#[derive(Debug, PartialEq)]
enum Piece {
    Text,
    Variable(String),
    Block,
}

pub(crate) fn scan(template: &str, delimiters: &Delimiters) -> Scanned {
    let mut out = String::with_capacity(template.len() + 16);
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < template.len() {
        let rest = &template[pos..];
        let next = [
            (rest.find(delimiters.variable_start), Tag::Variable),
            (rest.find(delimiters.block_start), Tag::Block),
            (rest.find(delimiters.comment_start), Tag::Comment),
        ]
        .into_iter()
        .filter_map(|(at, tag)| at.map(|at| (at, tag)))
        .min_by_key(|(at, _)| *at);
        let Some((at, tag)) = next else {
            out.push_str(rest);
            pieces.push(Piece::Text);
            break;
        };
        if at > 0 {
            out.push_str(&rest[..at]);
            pieces.push(Piece::Text);
        }
        let start = pos + at;
        match tag {
            Tag::Comment => {
                let body = start + delimiters.comment_start.len();
                let end = template[body..]
                    .find(delimiters.comment_end)
                    .map_or(template.len(), |e| body + e + delimiters.comment_end.len());
                out.push_str(&template[start..end]);
                pos = end;
            }
            Tag::Variable | Tag::Block => {
                let (open, close) = match tag {
                    Tag::Variable => (delimiters.variable_start, delimiters.variable_end),
                    _ => (delimiters.block_start, delimiters.block_end),
                };
                let code_start = start + open.len();
                let tag_code = split_tag(&template[code_start..], close);
                out.push_str(open);
                out.push_str(tag_code.open_marker);
                let code = rewrite_code(tag_code.code, tag == Tag::Block);
                out.push_str(&code);
                out.push_str(tag_code.close_marker);
                if tag_code.closed {
                    out.push_str(close);
                }
                pos = code_start + tag_code.consumed;
                if tag == Tag::Variable {
                    pieces.push(Piece::Variable(code));
                } else {
                    pieces.push(Piece::Block);
                    if first_word(tag_code.code) == Some("raw") {
                        // Copy a raw section verbatim up to and including its end tag.
                        let end = find_endraw(template, pos, delimiters);
                        out.push_str(&template[pos..end]);
                        pos = end;
                    }
                }
            }
        }
    }
    let sole_expression = match pieces.as_slice() {
        [Piece::Variable(code)] => Some(code.clone()),
        _ => None,
    };
    Scanned {
        source: out,
        sole_expression,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tag {
    Variable,
    Block,
    Comment,
}

struct TagCode<'a> {
    open_marker: &'a str,
    code: &'a str,
    close_marker: &'a str,
    closed: bool,
    /// Bytes after the open delimiter up to and including the close delimiter.
    consumed: usize,
}

/// Splits what follows an open delimiter into whitespace markers, code and the close delimiter,
/// which is the first one outside a string literal.
fn split_tag<'a>(after_open: &'a str, close: &str) -> TagCode<'a> {
    let open_marker = match after_open.as_bytes().first() {
        Some(b'-' | b'+') => &after_open[..1],
        _ => "",
    };
    let body = &after_open[open_marker.len()..];
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => i = skip_string(bytes, i, quote),
            b'-' | b'+' if body[i + 1..].starts_with(close) => {
                return TagCode {
                    open_marker,
                    code: &body[..i],
                    close_marker: &body[i..i + 1],
                    closed: true,
                    consumed: open_marker.len() + i + 1 + close.len(),
                };
            }
            _ if body[i..].starts_with(close) => {
                return TagCode {
                    open_marker,
                    code: &body[..i],
                    close_marker: "",
                    closed: true,
                    consumed: open_marker.len() + i + close.len(),
                };
            }
            _ => i += 1,
        }
    }
    TagCode {
        open_marker,
        code: body,
        close_marker: "",
        closed: false,
        consumed: after_open.len(),
    }
}

/// Index just past the string literal that starts at `start` (or the end of input).
fn skip_string(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b if b == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn first_word(code: &str) -> Option<&str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .find(|w| !w.is_empty())
}

/// Where the `{% endraw %}` tag that closes a raw section ends (or the end of input).
fn find_endraw(template: &str, from: usize, delimiters: &Delimiters) -> usize {
    let mut pos = from;
    while let Some(at) = template[pos..].find(delimiters.block_start) {
        let open = pos + at;
        let after = &template[open + delimiters.block_start.len()..];
        let trimmed = after.trim_start_matches(['-', '+']).trim_start();
        if trimmed.starts_with("endraw")
            && let Some(close) = after.find(delimiters.block_end)
        {
            return open + delimiters.block_start.len() + close + delimiters.block_end.len();
        }
        pos = open + delimiters.block_start.len();
    }
    template.len()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Space,
    Str,
    Ident,
    Number,
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

fn tokenize(code: &str) -> Vec<Token<'_>> {
    let bytes = code.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let kind = if b.is_ascii_whitespace() {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            Kind::Space
        } else if b == b'"' || b == b'\'' {
            i = skip_string(bytes, i, b);
            Kind::Str
        } else if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
            {
                i += 1;
            }
            Kind::Ident
        } else if b.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            // A fraction, but not the start of a method call on an integer.
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            Kind::Number
        } else {
            let rest = &code[i..];
            i += ["===", "!==", "==", "!=", "<=", ">=", "**", "//"]
                .iter()
                .find(|op| rest.starts_with(*op))
                .map_or(1, |op| op.len());
            Kind::Punct
        };
        // Multi-byte characters: keep slicing on char boundaries.
        while !code.is_char_boundary(i) {
            i += 1;
        }
        tokens.push(Token {
            kind,
            text: &code[start..i],
        });
    }
    tokens
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Nesting {
    Paren,
    Bracket,
    /// An object literal; `true` while the next token is in key position.
    Brace(bool),
}

/// Applies the rewrites listed in the module documentation to the code of one tag.
pub(crate) fn rewrite_code(code: &str, is_block: bool) -> String {
    let tokens = tokenize(code);
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| tokens[i].kind != Kind::Space)
        .collect();
    let next_significant = |i: usize| significant.iter().find(|&&j| j > i).map(|&j| tokens[j]);
    let prev_significant = |i: usize| {
        significant
            .iter()
            .rev()
            .find(|&&j| j < i)
            .map(|&j| tokens[j])
    };

    // `{% for targets in iterable %}`: which token starts the iterable, and how many targets.
    let mut for_loop: Option<(usize, usize)> = None;
    if is_block && significant.first().map(|&i| tokens[i].text) == Some("for") {
        let mut targets = 1;
        for &i in &significant[1..] {
            match (tokens[i].kind, tokens[i].text) {
                (Kind::Punct, ",") => targets += 1,
                (Kind::Ident, "in") => {
                    for_loop = significant
                        .iter()
                        .find(|&&j| j > i)
                        .map(|&start| (start, targets));
                    break;
                }
                _ => {}
            }
        }
    }

    let mut out = String::with_capacity(code.len() + 16);
    let mut stack: Vec<Nesting> = Vec::new();
    let mut skip_next = false;
    for (i, token) in tokens.iter().enumerate() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if let Some((iterable_start, _)) = for_loop
            && i == iterable_start
        {
            out.push('(');
        }
        let in_key_position = matches!(stack.last(), Some(Nesting::Brace(true)));
        if token.kind != Kind::Space
            && let Some(Nesting::Brace(key)) = stack.last_mut()
        {
            *key = false;
        }
        match (token.kind, token.text) {
            (Kind::Punct, "===") => out.push_str("=="),
            (Kind::Punct, "!==") => out.push_str("!="),
            (Kind::Punct, "(") => {
                stack.push(Nesting::Paren);
                out.push('(');
            }
            (Kind::Punct, "[") => {
                stack.push(Nesting::Bracket);
                out.push('[');
            }
            (Kind::Punct, "{") => {
                stack.push(Nesting::Brace(true));
                out.push('{');
            }
            (Kind::Punct, ")" | "]" | "}") => {
                stack.pop();
                out.push_str(token.text);
            }
            (Kind::Punct, ",") => {
                if let Some(Nesting::Brace(key)) = stack.last_mut() {
                    *key = true;
                }
                out.push(',');
            }
            (Kind::Punct, ".")
                if next_significant(i).is_some_and(|t| t.text == "length")
                    && tokens.get(i + 1).is_some_and(|t| t.text == "length")
                    && prev_significant(i).is_some_and(ends_value)
                    && next_significant(i + 1).is_none_or(|t| t.text != "(") =>
            {
                out.push_str("|__js_length");
                skip_next = true;
            }
            (Kind::Ident, name)
                if in_key_position && next_significant(i).is_some_and(|t| t.text == ":") =>
            {
                out.push('"');
                out.push_str(name);
                out.push('"');
            }
            (Kind::Ident, "null")
                if prev_significant(i).is_none_or(|t| t.text != ".") && !in_key_position =>
            {
                out.push_str("none");
            }
            (Kind::Ident, "elseif") if is_block && significant.first() == Some(&i) => {
                out.push_str("elif");
            }
            _ => out.push_str(token.text),
        }
    }
    if let Some((_, targets)) = for_loop {
        let trimmed_len = out.trim_end().len();
        let trailing = out.split_off(trimmed_len);
        out.push_str(if targets > 1 {
            ")|__js_items"
        } else {
            ")|__js_iter"
        });
        out.push_str(&trailing);
    }
    out
}

/// Whether a token can end an operand, so that a following `.length` is a member lookup.
fn ends_value(token: Token<'_>) -> bool {
    matches!(token.kind, Kind::Ident | Kind::Str | Kind::Number) || matches!(token.text, ")" | "]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_javascript_operators_outside_strings() {
        assert_eq!(
            rewrite_code(" a === 'x === y' && b !== null ", false),
            " a == 'x === y' && b != none "
        );
    }

    #[test]
    fn rewrites_length_and_bare_keys() {
        assert_eq!(rewrite_code("a.b.length + 1", false), "a.b|__js_length + 1");
        assert_eq!(rewrite_code("s.length()", false), "s.length()");
        assert_eq!(
            rewrite_code("{a: 1, 'b': {c: x.length}}", false),
            "{\"a\": 1, 'b': {\"c\": x|__js_length}}"
        );
        assert_eq!(rewrite_code("x ? a : b", false), "x ? a : b");
    }

    #[test]
    fn rewrites_for_loops_and_elseif() {
        assert_eq!(
            rewrite_code(" for k, v in parameters ", true),
            " for k, v in (parameters)|__js_items "
        );
        assert_eq!(
            rewrite_code("for x in a | sort", true),
            "for x in (a | sort)|__js_iter"
        );
        assert_eq!(rewrite_code(" elseif x ", true), " elif x ");
    }

    #[test]
    fn finds_the_sole_expression() {
        let one = scan("{# hi #}${{- parameters.name -}}", &STANDARD);
        assert_eq!(one.sole_expression.as_deref(), Some(" parameters.name "));
        assert!(scan(" ${{ x }}", &STANDARD).sole_expression.is_none());
        assert!(
            scan("${{ x }}${{ y }}", &STANDARD)
                .sole_expression
                .is_none()
        );
        assert!(scan("{{ x }}", &STANDARD).sole_expression.is_none());
        assert_eq!(
            scan("{{ x }}", &COOKIECUTTER).sole_expression.as_deref(),
            Some(" x ")
        );
    }

    #[test]
    fn keeps_raw_sections_and_strings_verbatim() {
        let s = scan(
            "{% raw %}${{ a === b }}{% endraw %}${{ '}}' === x }}",
            &STANDARD,
        );
        assert_eq!(
            s.source,
            "{% raw %}${{ a === b }}{% endraw %}${{ '}}' == x }}"
        );
    }
}
