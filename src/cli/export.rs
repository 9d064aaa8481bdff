//! `users export --format csv|xlsx --output FILE`: the directory (with the
//! filters of `users list`) as a spreadsheet, streamed — the users are read
//! one at a time and written as they come, so a million of them are never
//! held in memory (decision 0030). The file appears whole or not at all: it
//! is written beside its destination under a temporary name and renamed
//! into place once complete.
//!
//! CSV: UTF-8 (`--bom` puts a byte-order mark first, for Excel), the
//! columns of `users list --format csv`, every cell a spreadsheet would read
//! as a formula neutralised with a leading `'`. XLSX (rust_xlsxwriter in
//! constant-memory mode): a bold, frozen header row with an autofilter,
//! column widths fitted to the first rows, the two timestamps as real dates,
//! every text written as a string (a formula-looking title stays text), and
//! past a sheet's 1,048,575 data rows a second sheet, and so on.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use super::args::FilterArgs;
use super::output::{csv_row, spreadsheet_safe, CSV_COLUMNS};
use super::text::visible;
use super::{exit, output};
use crate::store::{Store, UserView};

/// The file formats of `users export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated values, UTF-8.
    Csv,
    /// An Excel workbook.
    Xlsx,
}

/// `users export` arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Which users.
    #[command(flatten)]
    pub filter: FilterArgs,
    /// The file format (default: from the output's extension).
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// The file to write (replaced whole once the export is complete).
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Start a CSV with a UTF-8 byte-order mark, so Excel reads it as UTF-8.
    #[arg(long)]
    pub bom: bool,
}

/// Data rows of one sheet: Excel's 1,048,576 rows less the header.
const SHEET_ROWS: usize = 1_048_575;
/// Test knob: data rows per sheet (default [`SHEET_ROWS`]), so a small export
/// runs through the sheet change a million users make.
const SHEET_ROWS_KNOB: &str = "LIAISON_TEST_XLSX_SHEET_ROWS";
/// Rows the column widths are judged from (then fixed: the export streams).
const SAMPLE: usize = 1_000;
/// The widest a fitted column gets, in characters.
const MAX_WIDTH: usize = 60;
/// The longest text an Excel cell holds.
const MAX_CELL: usize = 32_767;
/// The columns (of [`CSV_COLUMNS`]) written as dates in XLSX.
const DATE_COLUMNS: [usize; 2] = [15, 16];
/// The columns written as booleans in XLSX.
const BOOL_COLUMNS: [usize; 3] = [10, 11, 12];

/// `users export`.
pub(super) fn export(store: &mut dyn Store, args: &ExportArgs) -> anyhow::Result<u8> {
    let format = match args.format.or_else(|| format_of(&args.output)) {
        Some(f) => f,
        None => {
            output::error_line(
                "error: --format csv or xlsx is needed (the output's extension says neither)",
            );
            return Ok(exit::INVALID);
        }
    };
    if args.bom && format == ExportFormat::Xlsx {
        output::error_line("error: --bom is for CSV; an XLSX file needs none");
        return Ok(exit::INVALID);
    }
    let filter = match super::find::filter_of(store, &args.filter)? {
        Ok(f) => f,
        Err(code) => return Ok(code),
    };
    let target = &args.output;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if target.is_dir() {
        output::error_line(&format!(
            "error: --output {} is a folder; name a file",
            target.display()
        ));
        return Ok(exit::INVALID);
    }
    // Beside the destination, so the rename is atomic and nothing
    // half-written ever has the destination's name.
    let temp = tempfile::Builder::new()
        .prefix(".liaison-export-")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let written = match format {
        ExportFormat::Csv => write_csv(store, &filter, temp.path(), args.bom)?,
        ExportFormat::Xlsx => write_xlsx(store, &filter, temp.path(), &dir)?,
    };
    // A file replaced keeps its permissions; a new one is its owner's only
    // (it holds personal data), as the temp file was made.
    if let Ok(old) = std::fs::metadata(target) {
        std::fs::set_permissions(temp.path(), old.permissions())
            .with_context(|| format!("writing {}", target.display()))?;
    }
    temp.persist(target)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", target.display()))?;
    let sheets = match (format, written.sheets) {
        (ExportFormat::Xlsx, n) if n > 1 => format!(" on {n} sheets"),
        _ => String::new(),
    };
    output::line(&format!(
        "exported {} user{}{sheets} to {}",
        written.users,
        if written.users == 1 { "" } else { "s" },
        visible(&target.display().to_string())
    ));
    Ok(exit::OK)
}

/// The format a file name's extension says.
fn format_of(path: &Path) -> Option<ExportFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(ExportFormat::Csv),
        "xlsx" => Some(ExportFormat::Xlsx),
        _ => None,
    }
}

/// What an export wrote.
struct Written {
    users: usize,
    sheets: usize,
}

/// Visits the users `filter` selects, stopping at `write`'s first error.
fn each_user(
    store: &mut dyn Store,
    filter: &crate::store::UserFilter,
    write: &mut dyn FnMut(UserView) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut failed = None;
    store.for_each_user(filter, &mut |u| match write(u) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    })?;
    failed.map_or(Ok(()), Err)
}

fn write_csv(
    store: &mut dyn Store,
    filter: &crate::store::UserFilter,
    path: &Path,
    bom: bool,
) -> anyhow::Result<Written> {
    let file =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut out = BufWriter::new(file);
    if bom {
        out.write_all("\u{feff}".as_bytes())?;
    }
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    let mut users = 0;
    each_user(store, filter, &mut |u| {
        users += 1;
        w.write_record(csv_row(&u).map(spreadsheet_safe))?;
        Ok(())
    })?;
    let mut out = w.into_inner().map_err(|e| e.into_error())?;
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok(Written { users, sheets: 1 })
}

/// The XLSX writer: sheets of at most `per_sheet` data rows, each with the
/// header, widths, frozen pane and autofilter of the first.
struct Xlsx {
    workbook: Workbook,
    header: Format,
    date: Format,
    widths: [f64; 17],
    per_sheet: usize,
    /// Data rows on the current sheet.
    rows: usize,
    sheets: usize,
}

fn xlsx_error(e: XlsxError) -> anyhow::Error {
    anyhow::anyhow!("writing the spreadsheet: {e}")
}

impl Xlsx {
    fn sheet(&mut self) -> anyhow::Result<&mut Worksheet> {
        self.workbook
            .worksheet_from_index(self.sheets.saturating_sub(1))
            .map_err(xlsx_error)
    }

    /// Closes the current sheet (its autofilter spans its rows) and starts
    /// the next, with its header.
    fn next_sheet(&mut self) -> anyhow::Result<()> {
        self.close_sheet()?;
        let name = match self.sheets {
            0 => "users".to_owned(),
            n => format!("users {}", n + 1),
        };
        let (header, widths) = (self.header.clone(), self.widths);
        let sheet = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_error)?;
        sheet.set_name(name).map_err(xlsx_error)?;
        for (col, width) in widths.iter().enumerate() {
            sheet
                .set_column_width(col as u16, *width)
                .map_err(xlsx_error)?;
        }
        for (col, name) in CSV_COLUMNS.iter().enumerate() {
            sheet
                .write_string_with_format(0, col as u16, *name, &header)
                .map_err(xlsx_error)?;
        }
        sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
        self.sheets += 1;
        self.rows = 0;
        Ok(())
    }

    fn close_sheet(&mut self) -> anyhow::Result<()> {
        if self.sheets == 0 {
            return Ok(());
        }
        let rows = self.rows as u32;
        let last_col = (CSV_COLUMNS.len() - 1) as u16;
        self.sheet()?
            .autofilter(0, 0, rows, last_col)
            .map_err(xlsx_error)?;
        Ok(())
    }

    fn row(&mut self, u: &UserView) -> anyhow::Result<()> {
        if self.sheets == 0 || self.rows >= self.per_sheet {
            self.next_sheet()?;
        }
        self.rows += 1;
        let row = self.rows as u32;
        let date = self.date.clone();
        let cells = csv_row(u);
        let sheet = self.sheet()?;
        for (col, cell) in cells.into_iter().enumerate() {
            let c = col as u16;
            if col == 0 {
                sheet
                    .write_number(row, c, u.id as f64)
                    .map_err(xlsx_error)?;
            } else if BOOL_COLUMNS.contains(&col) {
                sheet
                    .write_boolean(row, c, cell == "true")
                    .map_err(xlsx_error)?;
            } else if DATE_COLUMNS.contains(&col) {
                match excel_date(&cell) {
                    Some(d) => sheet
                        .write_datetime_with_format(row, c, d, &date)
                        .map_err(xlsx_error)?,
                    None => sheet.write_string(row, c, cell).map_err(xlsx_error)?,
                };
            } else if !cell.is_empty() {
                // Always a string: a title such as `=HYPERLINK(…)` stays text.
                sheet.write_string(row, c, cut(cell)).map_err(xlsx_error)?;
            }
        }
        Ok(())
    }
}

/// An RFC 3339 time as an Excel date-time (UTC).
fn excel_date(text: &str) -> Option<ExcelDateTime> {
    let t = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    ExcelDateTime::from_timestamp(t.timestamp()).ok()
}

/// `text` within the length of one cell.
fn cut(text: String) -> String {
    if text.chars().count() <= MAX_CELL {
        return text;
    }
    text.chars().take(MAX_CELL).collect()
}

/// Column widths (in characters) fitted to the header and `sample`.
fn fitted_widths(sample: &[UserView]) -> [f64; 17] {
    let mut w = CSV_COLUMNS.map(|h| h.chars().count());
    for u in sample {
        for (col, cell) in csv_row(u).iter().enumerate() {
            let len = if DATE_COLUMNS.contains(&col) {
                19
            } else {
                cell.chars().count()
            };
            w[col] = w[col].max(len);
        }
    }
    w.map(|n| (n.min(MAX_WIDTH) + 2) as f64)
}

fn sheet_rows() -> anyhow::Result<usize> {
    match std::env::var(SHEET_ROWS_KNOB) {
        Err(_) => Ok(SHEET_ROWS),
        Ok(text) => text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=SHEET_ROWS).contains(n))
            .ok_or_else(|| anyhow::anyhow!("{SHEET_ROWS_KNOB}={text:?} is not 1 to {SHEET_ROWS}")),
    }
}

fn write_xlsx(
    store: &mut dyn Store,
    filter: &crate::store::UserFilter,
    path: &Path,
    dir: &Path,
) -> anyhow::Result<Written> {
    let mut workbook = Workbook::new();
    // The rows go to temp files beside the output, not to a /tmp that may
    // live in memory.
    workbook.set_tempdir(dir).map_err(xlsx_error)?;
    let mut x = Xlsx {
        workbook,
        header: Format::new().set_bold(),
        date: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        widths: [10.0; 17],
        per_sheet: sheet_rows()?,
        rows: 0,
        sheets: 0,
    };
    let mut sample: Vec<UserView> = Vec::new();
    let mut users = 0;
    each_user(store, filter, &mut |u| {
        users += 1;
        if sample.len() < SAMPLE && x.sheets == 0 {
            sample.push(u);
            if sample.len() == SAMPLE {
                x.widths = fitted_widths(&sample);
                for s in sample.drain(..) {
                    x.row(&s)?;
                }
            }
            return Ok(());
        }
        x.row(&u)
    })?;
    if x.sheets == 0 {
        x.widths = fitted_widths(&sample);
        for s in &sample {
            x.row(s)?;
        }
    }
    if x.sheets == 0 {
        // No user at all: the header alone.
        x.next_sheet()?;
    }
    x.close_sheet()?;
    x.workbook.save(path).map_err(xlsx_error)?;
    Ok(Written {
        users,
        sheets: x.sheets,
    })
}
