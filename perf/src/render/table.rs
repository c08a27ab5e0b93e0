//! Tables as data, so that Markdown and HTML show the same content: each renderer only
//! decides how a [`Table`] looks. Cell text is raw; the renderers escape it. Terminal tables
//! are comfy-table's, all set up alike by [`terminal_table`].

use super::format::{html, md};

/// One cell: raw text, optionally emphasised (a failure, a regression).
#[derive(Debug, Clone, Default)]
pub(crate) struct Text {
    pub text: String,
    pub strong: bool,
}

impl Text {
    pub fn strong(text: impl Into<String>) -> Self {
        Text { text: text.into(), strong: true }
    }
}

impl<T: Into<String>> From<T> for Text {
    fn from(t: T) -> Self {
        Text { text: t.into(), strong: false }
    }
}

/// Column alignment: numbers right, words left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    pub columns: Vec<(&'static str, Align)>,
    pub rows: Vec<Vec<Text>>,
    /// A sentence under the table.
    pub note: Option<String>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Table { columns: columns.to_vec(), rows: Vec::new(), note: None }
    }

    pub fn row(&mut self, cells: Vec<Text>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// GitHub-flavoured Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from("|");
        for (name, _) in &self.columns {
            out.push_str(&format!(" {} |", md(name)));
        }
        out.push_str("\n|");
        for (_, align) in &self.columns {
            out.push_str(if *align == Align::Right { "--:|" } else { "---|" });
        }
        out.push('\n');
        for row in &self.rows {
            out.push('|');
            for cell in row {
                if cell.strong && !cell.text.is_empty() {
                    out.push_str(&format!(" **{}** |", md(&cell.text)));
                } else {
                    out.push_str(&format!(" {} |", md(&cell.text)));
                }
            }
            out.push('\n');
        }
        if let Some(n) = &self.note {
            out.push_str(&format!("\n{}\n", md(n)));
        }
        out
    }

    /// An HTML `<table>`.
    pub fn html(&self) -> String {
        let mut out = String::from("<table>\n<thead><tr>");
        for (name, align) in &self.columns {
            out.push_str(&format!("<th{}>{}</th>", class(*align), html(name)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let align = self.columns.get(i).map(|c| c.1).unwrap_or(Align::Left);
                let text = html(&cell.text);
                let text = if cell.strong { format!("<strong>{text}</strong>") } else { text };
                out.push_str(&format!("<td{}>{text}</td>", class(align)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        if let Some(n) = &self.note {
            out.push_str(&format!("<p class=\"note\">{}</p>\n", html(n)));
        }
        out
    }
}

fn class(a: Align) -> &'static str {
    if a == Align::Right { " class=\"num\"" } else { "" }
}

/// An empty comfy-table in the style of every terminal table of the gate: condensed UTF-8
/// borders, colours only when `color` (and then even without a TTY, since the caller knows),
/// and wrapped to `width` columns when one is given.
pub(crate) fn terminal_table(color: bool, width: Option<u16>) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    if let Some(w) = width {
        t.set_width(w).set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    }
    t
}
