//! The report as the tables a lighting bureau files: sections (one sheet
//! each in a workbook), columns carrying their Chinese and English labels and
//! the kind of value they hold, rendered as XLSX or CSV. A column's key, its
//! two labels and how its values are shown sit together here, so a figure is
//! labelled the same in every format and language.
//!
//! CSV: in English the header is the column's key (machine-readable, stable
//! across releases: `rtu_online_rate_pct`), in Chinese its Chinese label;
//! ratios as percent with two decimals, empty where the denominator is 0.
//! XLSX: the label in the chosen language as a bold header row frozen at the
//! top, ratios as fractions with a percent format (a spreadsheet computes on
//! them), widths fitted to the longest value (a CJK character counts double).

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde::{Deserialize, Serialize};

/// The language of labels and headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// 中文: the bureau's staff read Chinese.
    Zh,
    #[default]
    En,
}

/// How the values of a column are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// Whole numbers of things.
    Count,
    /// A fraction in [0, 1]: percent with two decimals.
    Percent,
    /// Whole seconds (or lamp-seconds).
    Seconds,
    /// Hours, kWh and other quantities: two decimals.
    Decimal,
}

/// One column of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The CSV header in English; ends in `_pct` for a percent column.
    pub key: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    pub kind: Kind,
}

impl Column {
    pub const fn new(key: &'static str, zh: &'static str, en: &'static str, kind: Kind) -> Self {
        Self { key, zh, en, kind }
    }

    fn label(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh,
            Lang::En => self.en,
        }
    }
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Count(u64),
    Number(f64),
    /// No value: a ratio whose denominator is 0, a figure not measured.
    Empty,
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<u64> for Cell {
    fn from(n: u64) -> Self {
        Cell::Count(n)
    }
}

impl From<f64> for Cell {
    fn from(x: f64) -> Self {
        if x.is_finite() {
            Cell::Number(x)
        } else {
            Cell::Empty
        }
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Empty, Into::into)
    }
}

/// One table: a sheet of the workbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub zh: &'static str,
    pub en: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

impl Section {
    pub fn new(zh: &'static str, en: &'static str, columns: Vec<Column>) -> Self {
        Self {
            zh,
            en,
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row; `cells` must match the columns one for one.
    pub fn push(&mut self, cells: Vec<Cell>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "section {}", self.en);
        self.rows.push(cells);
    }

    fn title(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Zh => self.zh,
            Lang::En => self.en,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("writing the workbook failed: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("writing CSV failed: {0}")]
    Csv(#[from] csv::Error),
}

/// A cell as CSV text.
fn csv_text(cell: &Cell, kind: Kind) -> String {
    match (cell, kind) {
        (Cell::Empty, _) => String::new(),
        (Cell::Text(s), _) => s.clone(),
        (Cell::Count(n), _) => n.to_string(),
        (Cell::Number(x), Kind::Percent) => format!("{:.2}", x * 100.0),
        (Cell::Number(x), Kind::Seconds | Kind::Count) => format!("{x:.0}"),
        (Cell::Number(x), _) => format!("{x:.2}"),
    }
}

/// One section as CSV: one header line, one line per row.
pub fn csv(section: &Section, lang: Lang) -> Result<String, SheetError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(section.columns.iter().map(|c| match lang {
        Lang::En => c.key,
        Lang::Zh => c.zh,
    }))?;
    for row in &section.rows {
        w.write_record(
            row.iter()
                .zip(&section.columns)
                .map(|(cell, col)| csv_text(cell, col.kind)),
        )?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Display width of a text in a spreadsheet's character units: wide (CJK)
/// characters take two.
fn width(s: &str) -> usize {
    s.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 2 } else { 1 })
        .sum()
}

/// A sheet name as spreadsheets accept it: at most 31 characters, none of
/// `[]:*?/\`, unique in the book.
fn sheet_name(title: &str, taken: &[String]) -> String {
    let clean: String = title
        .chars()
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .take(28)
        .collect();
    let mut name = clean.clone();
    let mut n = 2;
    while taken.iter().any(|t| t.eq_ignore_ascii_case(&name)) {
        name = format!("{clean} {n}");
        n += 1;
    }
    name
}

/// The sections as an XLSX workbook, a sheet each, in order.
pub fn xlsx(sections: &[Section], lang: Lang) -> Result<Vec<u8>, SheetError> {
    let mut book = Workbook::new();
    let header = Format::new().set_bold().set_text_wrap();
    let percent = Format::new().set_num_format("0.00%");
    let count = Format::new().set_num_format("0");
    let seconds = Format::new().set_num_format("#,##0");
    let decimal = Format::new().set_num_format("#,##0.00");
    let mut names: Vec<String> = Vec::new();
    for section in sections {
        let name = sheet_name(section.title(lang), &names);
        let sheet = book.add_worksheet();
        sheet.set_name(&name)?;
        names.push(name);
        let mut widths: Vec<usize> = section
            .columns
            .iter()
            .map(|c| width(c.label(lang)).min(24))
            .collect();
        for (ci, col) in section.columns.iter().enumerate() {
            sheet.write_string_with_format(0, ci as u16, col.label(lang), &header)?;
        }
        for (ri, row) in section.rows.iter().enumerate() {
            let r = ri as u32 + 1;
            for (ci, (cell, col)) in row.iter().zip(&section.columns).enumerate() {
                let c = ci as u16;
                let shown = match cell {
                    Cell::Empty => continue,
                    Cell::Text(s) => {
                        sheet.write_string(r, c, s)?;
                        width(s)
                    }
                    Cell::Count(n) => {
                        sheet.write_number_with_format(r, c, *n as f64, &count)?;
                        n.to_string().len()
                    }
                    Cell::Number(x) => {
                        let format = match col.kind {
                            Kind::Percent => &percent,
                            Kind::Count => &count,
                            Kind::Seconds => &seconds,
                            Kind::Text | Kind::Decimal => &decimal,
                        };
                        sheet.write_number_with_format(r, c, *x, format)?;
                        csv_text(cell, col.kind).len() + 2
                    }
                };
                widths[ci] = widths[ci].max(shown);
            }
        }
        for (ci, w) in widths.iter().enumerate() {
            sheet.set_column_width(ci as u16, (*w).clamp(6, 60) as f64 + 2.0)?;
        }
        // The header row stays in view, and the row's name with it on wide
        // sheets.
        sheet.set_freeze_panes(1, 1)?;
    }
    Ok(book.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader, Xlsx};

    fn sample() -> Section {
        let mut s = Section::new(
            "汇总",
            "Summary",
            vec![
                Column::new("scope", "范围", "Scope", Kind::Text),
                Column::new("lamps_total", "路灯总数", "Lamps", Kind::Count),
                Column::new(
                    "lighting_rate_pct",
                    "亮灯率",
                    "Lighting rate",
                    Kind::Percent,
                ),
                Column::new(
                    "lamp_lit_seconds",
                    "亮灯时长(灯·秒)",
                    "Lit lamp-seconds",
                    Kind::Seconds,
                ),
            ],
        );
        s.push(vec![
            "D01".into(),
            40u64.into(),
            Some(0.975).into(),
            3600.4.into(),
        ]);
        s.push(vec![
            "city".into(),
            0u64.into(),
            None::<f64>.into(),
            0.0.into(),
        ]);
        s
    }

    #[test]
    fn csv_headers_are_keys_in_english_and_labels_in_chinese() {
        let s = sample();
        let en = csv(&s, Lang::En).unwrap();
        assert_eq!(
            en,
            "scope,lamps_total,lighting_rate_pct,lamp_lit_seconds\nD01,40,97.50,3600\ncity,0,,0\n"
        );
        let zh = csv(&s, Lang::Zh).unwrap();
        assert!(
            zh.starts_with("范围,路灯总数,亮灯率,亮灯时长(灯·秒)\n"),
            "{zh}"
        );
    }

    #[test]
    fn xlsx_reads_back_cell_by_cell() {
        let bytes = xlsx(&[sample(), sample()], Lang::Zh).unwrap();
        let mut book: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        // Two sections of the same title get distinct sheet names.
        assert_eq!(
            book.sheet_names(),
            vec!["汇总".to_string(), "汇总 2".to_string()]
        );
        let range = book.worksheet_range("汇总").unwrap();
        assert_eq!(
            range.get_value((0, 2)),
            Some(&Data::String("亮灯率".into()))
        );
        assert_eq!(range.get_value((1, 0)), Some(&Data::String("D01".into())));
        assert_eq!(range.get_value((1, 1)), Some(&Data::Float(40.0)));
        // The fraction itself, shown as a percent by its format.
        assert_eq!(range.get_value((1, 2)), Some(&Data::Float(0.975)));
        assert_eq!(range.get_value((2, 2)), Some(&Data::Empty));
    }

    #[test]
    fn sheet_names_are_cleaned() {
        assert_eq!(sheet_name("a/b:c", &[]), "a_b_c");
        let long = "x".repeat(40);
        assert_eq!(sheet_name(&long, &[]).chars().count(), 28);
    }
}
