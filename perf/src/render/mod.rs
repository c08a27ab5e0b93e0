//! Reports for people: terminal table, Markdown, HTML. Pure.
