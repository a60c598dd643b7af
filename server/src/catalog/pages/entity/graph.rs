//! The relations graph of an entity page: the entity in the centre, its neighbours on a ring around it.
//! Only coordinates are computed here; the SVG itself is markup in `catalog/entity/graph.html`, escaped by
//! askama like every other page.

use super::super::view::EntityLink;

/// Most neighbours drawn; the relations table below the graph lists them all.
const MAX_NODES: usize = 16;
pub const WIDTH: f64 = 860.0;
const NODE_WIDTH: f64 = 170.0;
const NODE_HEIGHT: f64 = 46.0;

pub struct GraphNode {
    pub href: String,
    pub label: String,
    pub kind: String,
    pub reference: String,
    /// Top-left corner of the node's box.
    pub x: f64,
    pub y: f64,
    /// Centre of the box, where its edge ends.
    pub cx: f64,
    pub cy: f64,
    /// The relation types that join it to the centre, e.g. "ownedBy".
    pub relation: String,
    /// Where the edge label goes (between the centre and the node).
    pub lx: f64,
    pub ly: f64,
}

pub struct Graph {
    pub centre_label: String,
    pub centre_kind: String,
    pub centre_x: f64,
    pub centre_y: f64,
    pub nodes: Vec<GraphNode>,
    /// Neighbours not drawn.
    pub hidden: usize,
    pub width: f64,
    pub height: f64,
    pub node_width: f64,
    pub node_height: f64,
}

/// Shortens a label so it fits in a node box.
fn fit(label: &str) -> String {
    const MAX: usize = 20;
    if label.chars().count() <= MAX {
        label.to_owned()
    } else {
        let mut short: String = label.chars().take(MAX - 1).collect();
        short.push('…');
        short
    }
}

/// `neighbours`: (link, relation types joined) in display order. The entity sits in the middle and
/// its neighbours stand in two columns, left and right, so no two boxes overlap however many there are.
pub fn layout(
    centre_label: &str,
    centre_kind: &str,
    neighbours: Vec<(EntityLink, String)>,
) -> Graph {
    const ROW: f64 = 62.0;
    let hidden = neighbours.len().saturating_sub(MAX_NODES);
    let count = neighbours.len().min(MAX_NODES);
    let rows = count.div_ceil(2).max(1);
    let height = (rows as f64 * ROW + 20.0).max(140.0);
    let (cx, cy) = (WIDTH / 2.0, height / 2.0);
    let nodes = neighbours
        .into_iter()
        .take(MAX_NODES)
        .enumerate()
        .map(|(i, (link, relation))| {
            // Left column gets the first half, right column the rest, each centred vertically.
            let left = i < count.div_ceil(2);
            let (row, in_column) = if left {
                (i, count.div_ceil(2))
            } else {
                (i - count.div_ceil(2), count / 2)
            };
            let top = (height - in_column as f64 * ROW) / 2.0;
            let ncy = top + row as f64 * ROW + ROW / 2.0;
            let ncx = if left {
                NODE_WIDTH / 2.0 + 10.0
            } else {
                WIDTH - NODE_WIDTH / 2.0 - 10.0
            };
            GraphNode {
                label: fit(&link.label),
                href: link.href,
                kind: link.kind.to_lowercase(),
                reference: link.reference,
                x: (ncx - NODE_WIDTH / 2.0).round(),
                y: (ncy - NODE_HEIGHT / 2.0).round(),
                cx: ncx.round(),
                cy: ncy.round(),
                lx: (cx + (ncx - cx) * 0.5).round(),
                ly: (cy + (ncy - cy) * 0.5 - 3.0).round(),
                relation,
            }
        })
        .collect();
    Graph {
        centre_label: fit(centre_label),
        centre_kind: centre_kind.to_lowercase(),
        centre_x: (cx - NODE_WIDTH / 2.0).round(),
        centre_y: (cy - NODE_HEIGHT / 2.0).round(),
        nodes,
        hidden,
        width: WIDTH,
        height,
        node_width: NODE_WIDTH,
        node_height: NODE_HEIGHT,
    }
}
