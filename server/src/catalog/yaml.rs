//! Safe parsing of untrusted catalog YAML (`catalog-info.yaml` and friends).
//!
//! Catalog files come from any git repository or URL a location points at, so this module treats
//! them as hostile: the input size, nesting depth, document count, node count and alias expansion
//! are all capped, duplicate keys and custom tags are errors, and nothing here can panic or
//! recurse on the input (the tree is built with an explicit stack).
//!
//! We drive serde-saphyr's event parser (`granit-parser`, re-exported as
//! `serde_saphyr::granit_parser`) directly instead of deserializing through serde: one pass over
//! the events gives us the JSON value, a field-to-line map for error messages, and full control
//! over the checks above. serde-saphyr's own `Budget` covers similar limits but only reports
//! locations through typed `Spanned<T>` fields, which do not fit free-form JSON entities.

use std::borrow::Cow;
use std::collections::HashMap;

use self::scalar::{TagKind, scalar_value};
use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{
    ErrorKind, Event, Options, Parser, ScalarStyle, ScanError, Span, Tag,
};

/// Resource limits applied to one catalog file.
///
/// The defaults fit any realistic catalog file with a wide margin while keeping the worst case
/// (an attacker-controlled file) to a few megabytes of memory and milliseconds of CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlLimits {
    /// Largest accepted input, in bytes (default 1 MiB). Also caps the text that anchors and
    /// aliases may copy, so the converted JSON stays within a small multiple of the input.
    pub max_bytes: usize,
    /// Deepest accepted nesting of mappings and sequences (default 64).
    pub max_depth: usize,
    /// Most non-empty documents (`---`) in one file (default 1000).
    pub max_documents: usize,
    /// Most nodes that aliases (`*name`) may copy in total (default 10 000). Ordinary reuse of a
    /// block is a few dozen nodes; an alias bomb ("billion laughs") needs millions.
    pub max_alias_expansions: usize,
    /// Most nodes materialised in total (default 250 000): every parsed key and value, every node
    /// copied through an alias and every node kept for an anchor.
    pub max_nodes: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_documents: 1000,
            max_alias_expansions: 10_000,
            max_nodes: 250_000,
        }
    }
}

/// A YAML parsing or validation error, with the position it refers to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(*.line, *.column, .message))]
pub struct YamlError {
    /// 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the problem, when known.
    pub column: Option<usize>,
    /// What went wrong, written for the person who maintains the file.
    pub message: String,
}

fn describe(line: Option<usize>, column: Option<usize>, message: &str) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: {message}"),
        (Some(line), None) => format!("line {line}: {message}"),
        _ => message.to_owned(),
    }
}

impl YamlError {
    fn at(span: &Span, message: impl Into<String>) -> Self {
        Self {
            line: Some(span.start.line()),
            column: Some(span.start.col() + 1),
            message: message.into(),
        }
    }
}

impl From<ScanError> for YamlError {
    fn from(err: ScanError) -> Self {
        Self {
            line: Some(err.marker().line()),
            column: Some(err.marker().col() + 1),
            message: format!("invalid YAML: {}", err.info()),
        }
    }
}

/// One YAML document of a multi-document file, converted to JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDocument {
    /// The document's content. Mapping keys keep their order from the file.
    pub value: Value,
    /// 1-based line where the document starts: its `---` marker, or its first node when the
    /// marker is omitted.
    pub line: usize,
    /// Lines of every key and item, shaped like `value`, for [`ParsedDocument::line_of`].
    lines: LineNode,
}

impl ParsedDocument {
    /// Best-known 1-based line of a dotted field path such as `"metadata.name"` or
    /// `"spec.versions.0.uri"`; falls back to the nearest ancestor that has a line, then to the
    /// document's line.
    ///
    /// Keys that themselves contain dots (annotations such as `backstage.io/techdocs-ref`) are
    /// matched too: at each mapping the longest run of segments that names a key wins.
    #[must_use]
    pub fn line_of(&self, field_path: &str) -> usize {
        let segments: Vec<&str> = if field_path.is_empty() {
            Vec::new()
        } else {
            field_path.split('.').collect()
        };
        let mut node = &self.lines;
        let mut i = 0;
        while i < segments.len() {
            let next = match &node.children {
                Children::Leaf => None,
                Children::Seq(items) => segments[i]
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| items.get(index))
                    .map(|child| (child, i + 1)),
                Children::Map(entries) => (i + 1..=segments.len()).rev().find_map(|end| {
                    entries
                        .get(&segments[i..end].join("."))
                        .map(|child| (child, end))
                }),
            };
            match next {
                Some((child, end)) => {
                    node = child;
                    i = end;
                }
                None => break,
            }
        }
        node.line
    }
}

/// The line of one node plus the lines of its children, mirroring the JSON value.
#[derive(Debug, Clone, PartialEq)]
struct LineNode {
    line: usize,
    children: Children,
}

#[derive(Debug, Clone, PartialEq)]
enum Children {
    Leaf,
    Seq(Vec<LineNode>),
    // Lookups are by key, and serde_json's map already keeps the order, so a HashMap suffices.
    Map(HashMap<String, LineNode>),
}

impl LineNode {
    fn leaf(line: usize) -> Self {
        Self {
            line,
            children: Children::Leaf,
        }
    }
}

/// Parses every document of `text` into JSON, enforcing `limits` and the strictness rules of
/// catalog files. Empty and null documents are skipped, as Backstage does.
///
/// # Errors
///
/// Returns the first problem found, with its line and (when known) column: invalid YAML, a
/// limit exceeded, a duplicate key, a custom tag, a complex mapping key, a recursive alias, or a
/// number JSON cannot hold.
pub fn parse_documents(text: &str, limits: &YamlLimits) -> Result<Vec<ParsedDocument>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError {
            line: Some(1),
            column: None,
            message: format!(
                "the file is {} bytes, over the limit of {} bytes",
                text.len(),
                limits.max_bytes
            ),
        });
    }
    let mut options = Options::default();
    // Another crate in the build may turn on granit's `comments` feature; we never want them.
    options.set_emit_comments(false);
    // The scanner looks ahead through flow collections (`[[[[...`) before it emits their
    // events, so our own depth check alone would come too late: the parser enforces the limit
    // too, and its error is reworded to match ours. Our check still counts flow and block
    // nesting together, which the parser counts separately.
    options.flow_nesting_limit = limits.max_depth;
    options.block_nesting_limit = limits.max_depth;

    let mut builder = Builder::new(text, limits);
    for event in Parser::new_from_str_with_options(text, options) {
        let (event, span) = event.map_err(|err| {
            if *err.kind() == ErrorKind::RecursionLimitExceeded {
                YamlError {
                    line: Some(err.marker().line()),
                    column: Some(err.marker().col() + 1),
                    message: too_deep(limits),
                }
            } else {
                YamlError::from(err)
            }
        })?;
        builder.event(event, &span)?;
    }
    Ok(builder.documents)
}

fn too_deep(limits: &YamlLimits) -> String {
    format!(
        "the YAML is nested more than {} levels deep",
        limits.max_depth
    )
}

/// A value copied by an anchor, ready to be cloned by its aliases.
struct Anchored {
    value: Value,
    /// The scalar's text, so that an alias can also serve as a mapping key.
    key_text: Option<String>,
    nodes: usize,
    bytes: usize,
}

/// A mapping or sequence whose end event has not been seen yet.
struct Frame {
    kind: FrameKind,
    anchor: usize,
    line: usize,
    /// Nodes and text bytes in this subtree so far, to charge anchor copies correctly.
    nodes: usize,
    bytes: usize,
}

enum FrameKind {
    Map {
        map: Map<String, Value>,
        lines: HashMap<String, LineNode>,
        /// The key read before its value, with the line of that key.
        pending_key: Option<(String, usize)>,
    },
    Seq {
        items: Vec<Value>,
        lines: Vec<LineNode>,
    },
}

/// A finished node on its way into its parent.
struct Node {
    value: Value,
    key_text: Option<String>,
    lines: LineNode,
    nodes: usize,
    bytes: usize,
}

struct Builder<'a> {
    text: &'a str,
    limits: &'a YamlLimits,
    documents: Vec<ParsedDocument>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    document_line: usize,
    root: Option<Node>,
    /// Everything materialised so far, checked against `max_nodes`.
    nodes: usize,
    /// Nodes copied by aliases, checked against `max_alias_expansions`.
    alias_nodes: usize,
    /// Text copied by anchors and aliases, checked against `max_bytes`.
    copied_bytes: usize,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str, limits: &'a YamlLimits) -> Self {
        Self {
            text,
            limits,
            documents: Vec::new(),
            stack: Vec::new(),
            anchors: HashMap::new(),
            document_line: 1,
            root: None,
            nodes: 0,
            alias_nodes: 0,
            copied_bytes: 0,
        }
    }

    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), YamlError> {
        match event {
            Event::DocumentStart(..) => {
                self.document_line = span.start.line();
                // Anchors are scoped to their document; dropping them frees the copies.
                self.anchors.clear();
                self.root = None;
            }
            Event::DocumentEnd => self.finish_document()?,
            Event::Scalar(text, style, anchor, tag) => {
                self.count_nodes(1, span)?;
                // `"\0"` is valid YAML, but Postgres cannot store a NUL in text or jsonb.
                if text.contains('\0') {
                    return Err(YamlError::at(
                        span,
                        "a NUL character (\\0) is not allowed in catalog files",
                    ));
                }
                let kind = self.tag_kind(tag.as_deref(), "a scalar", span)?;
                // The parser reports an absent node (`key:` or `: value`) as a zero-width `~`;
                // as a key it should read as the empty string, not as a tilde nobody wrote.
                let text = if style == ScalarStyle::Plain && span.is_empty() && text == "~" {
                    Cow::Borrowed("")
                } else {
                    text
                };
                let value = scalar_value(&text, style, kind).map_err(|m| YamlError::at(span, m))?;
                let bytes = text.len();
                let node = Node {
                    value,
                    key_text: Some(text.into_owned()),
                    lines: LineNode::leaf(span.start.line()),
                    nodes: 1,
                    bytes,
                };
                if anchor != 0 {
                    self.remember(anchor, &node, span)?;
                }
                self.complete(node, span)?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                self.open(span, tag.as_deref(), "a sequence")?;
                let kind = FrameKind::Seq {
                    items: Vec::new(),
                    lines: Vec::new(),
                };
                self.push_frame(kind, anchor, span);
            }
            Event::MappingStart(_, anchor, tag) => {
                self.open(span, tag.as_deref(), "a mapping")?;
                let kind = FrameKind::Map {
                    map: Map::new(),
                    lines: HashMap::new(),
                    pending_key: None,
                };
                self.push_frame(kind, anchor, span);
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(span)?,
            Event::Alias(id) => self.alias(id, span)?,
            // Stream markers, comments and anchor metadata carry no data; `Event` is
            // non-exhaustive, so anything added later is ignored the same way.
            _ => {}
        }
        Ok(())
    }

    fn count_nodes(&mut self, count: usize, span: &Span) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(count);
        if self.nodes > self.limits.max_nodes {
            return Err(YamlError::at(
                span,
                format!(
                    "the file has more than {} YAML nodes (keys, values and alias copies); \
                     it is too large for a catalog file",
                    self.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }

    /// Charges text copied by an anchor or alias; without this cap, aliasing one long string
    /// many times would need gigabytes while every node count stays small.
    fn count_copied_bytes(&mut self, bytes: usize, span: &Span) -> Result<(), YamlError> {
        self.copied_bytes = self.copied_bytes.saturating_add(bytes);
        if self.copied_bytes > self.limits.max_bytes {
            return Err(YamlError::at(
                span,
                format!(
                    "anchors and aliases copy more than {} bytes of text (the file size limit); \
                     this looks like an alias bomb",
                    self.limits.max_bytes
                ),
            ));
        }
        Ok(())
    }

    fn tag_kind(&self, tag: Option<&Tag>, what: &str, span: &Span) -> Result<TagKind, YamlError> {
        let Some(tag) = tag else {
            return Ok(TagKind::Implicit);
        };
        // granit reports the lone `!` as an empty handle with suffix `!`.
        if tag.handle().is_empty() && tag.suffix() == "!" {
            return Ok(TagKind::NonSpecific);
        }
        let written = span
            .tag_span()
            .and_then(|tag_span| tag_span.slice(self.text))
            .map_or_else(
                || format!("{}{}", tag.original_handle(), tag.suffix()),
                |written| shorten(written).into_owned(),
            );
        let position = span.tag_span().unwrap_or(*span);
        let core = match tag.core_suffix() {
            Some("str") => "str",
            Some("int") => "int",
            Some("float") => "float",
            Some("bool") => "bool",
            Some("null") => "null",
            Some("map") => "map",
            Some("seq") => "seq",
            _ => {
                return Err(YamlError::at(
                    &position,
                    format!(
                        "unknown YAML tag `{written}`: catalog files may only use the standard \
                         tags !!str, !!int, !!float, !!bool, !!null, !!map and !!seq"
                    ),
                ));
            }
        };
        let fits = match what {
            "a mapping" => core == "map",
            "a sequence" => core == "seq",
            _ => !matches!(core, "map" | "seq"),
        };
        if !fits {
            return Err(YamlError::at(
                &position,
                format!("the tag `{written}` cannot be used on {what}"),
            ));
        }
        Ok(TagKind::Core(core))
    }

    /// Checks shared by both collection starts: node count, depth, key position and tag.
    fn open(&mut self, span: &Span, tag: Option<&Tag>, what: &str) -> Result<(), YamlError> {
        self.count_nodes(1, span)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(YamlError::at(span, too_deep(self.limits)));
        }
        if self.expects_key() {
            return Err(complex_key(span));
        }
        self.tag_kind(tag, what, span).map(|_| ())
    }

    fn push_frame(&mut self, kind: FrameKind, anchor: usize, span: &Span) {
        self.stack.push(Frame {
            kind,
            anchor,
            line: span.start.line(),
            nodes: 1,
            bytes: 0,
        });
    }

    fn expects_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                kind: FrameKind::Map {
                    pending_key: None,
                    ..
                },
                ..
            })
        )
    }

    fn close(&mut self, span: &Span) -> Result<(), YamlError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let (value, children) = match frame.kind {
            FrameKind::Map { map, lines, .. } => (Value::Object(map), Children::Map(lines)),
            FrameKind::Seq { items, lines } => (Value::Array(items), Children::Seq(lines)),
        };
        let node = Node {
            value,
            key_text: None,
            lines: LineNode {
                line: frame.line,
                children,
            },
            nodes: frame.nodes,
            bytes: frame.bytes,
        };
        if frame.anchor != 0 {
            self.remember(frame.anchor, &node, span)?;
        }
        self.complete(node, span)
    }

    /// Keeps a copy of an anchored node for later aliases, charging the copy to the budgets.
    fn remember(&mut self, anchor: usize, node: &Node, span: &Span) -> Result<(), YamlError> {
        self.count_nodes(node.nodes, span)?;
        self.count_copied_bytes(node.bytes, span)?;
        self.anchors.insert(
            anchor,
            Anchored {
                value: node.value.clone(),
                key_text: node.key_text.clone(),
                nodes: node.nodes,
                bytes: node.bytes,
            },
        );
        Ok(())
    }

    fn alias(&mut self, id: usize, span: &Span) -> Result<(), YamlError> {
        let name = shorten(span.slice(self.text).unwrap_or("*alias")).into_owned();
        // The parser only resolves aliases to anchors it has seen, so a missing entry is an
        // anchor whose node is still open: the alias sits inside what it refers to.
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(YamlError::at(
                span,
                format!("the alias `{name}` refers to a node that contains it (a recursive alias)"),
            ));
        };
        let (nodes, bytes) = (anchored.nodes, anchored.bytes);
        // Check every budget before cloning, so a bomb is rejected without building anything.
        self.alias_nodes = self.alias_nodes.saturating_add(nodes);
        if self.alias_nodes > self.limits.max_alias_expansions {
            return Err(YamlError::at(
                span,
                format!(
                    "aliases expand to more than {} nodes (at `{name}`); this looks like an \
                     alias bomb (\"billion laughs\")",
                    self.limits.max_alias_expansions
                ),
            ));
        }
        self.count_nodes(nodes, span)?;
        self.count_copied_bytes(bytes, span)?;
        // Looked up again because the budget checks above needed `&mut self`.
        let Some(anchored) = self.anchors.get(&id) else {
            return Ok(());
        };
        let node = Node {
            value: anchored.value.clone(),
            key_text: anchored.key_text.clone(),
            lines: LineNode::leaf(span.start.line()),
            nodes,
            bytes,
        };
        self.complete(node, span)
    }

    /// Hands a finished node to its parent: as a key, as a value, as an item, or as the root.
    fn complete(&mut self, node: Node, span: &Span) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.nodes = frame.nodes.saturating_add(node.nodes);
        frame.bytes = frame.bytes.saturating_add(node.bytes);
        match &mut frame.kind {
            FrameKind::Seq { items, lines } => {
                items.push(node.value);
                lines.push(node.lines);
            }
            FrameKind::Map {
                map,
                lines,
                pending_key,
            } => match pending_key.take() {
                Some((key, key_line)) => {
                    map.insert(key.clone(), node.value);
                    // The key's line is where a reader looks for the field, even when the
                    // value starts on the next line.
                    let mut child = node.lines;
                    child.line = key_line;
                    lines.insert(key, child);
                }
                None => {
                    let Some(key) = node.key_text else {
                        return Err(complex_key(span));
                    };
                    if let Some(first) = lines.get(&key) {
                        return Err(YamlError::at(
                            span,
                            format!(
                                "duplicate key `{}` (first defined on line {})",
                                shorten(&key),
                                first.line
                            ),
                        ));
                    }
                    *pending_key = Some((key, span.start.line()));
                }
            },
        }
        Ok(())
    }

    fn finish_document(&mut self) -> Result<(), YamlError> {
        let Some(root) = self.root.take() else {
            return Ok(());
        };
        // Backstage skips empty documents, e.g. after a trailing `---`.
        if root.value.is_null() {
            return Ok(());
        }
        if self.documents.len() >= self.limits.max_documents {
            return Err(YamlError {
                line: Some(self.document_line),
                column: None,
                message: format!(
                    "the file has more than {} YAML documents; split it into several files",
                    self.limits.max_documents
                ),
            });
        }
        let mut lines = root.lines;
        lines.line = self.document_line;
        self.documents.push(ParsedDocument {
            value: root.value,
            line: self.document_line,
            lines,
        });
        Ok(())
    }
}

fn complex_key(span: &Span) -> YamlError {
    YamlError::at(
        span,
        "a mapping or sequence cannot be a mapping key; keys must be plain values such as \
         strings",
    )
}

/// Quotes user text in a message, cut short so that a hostile 1 MiB key or tag cannot bloat the
/// error stored with the entity and shown on its page.
fn shorten(text: &str) -> Cow<'_, str> {
    const MAX_CHARS: usize = 80;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

// Explicit paths keep the submodules next to this file however it is included (the crate's
// module tree, or a `#[path]` from a standalone test crate).
#[path = "yaml/scalar.rs"]
mod scalar;

#[cfg(test)]
#[path = "yaml/tests.rs"]
mod tests;
