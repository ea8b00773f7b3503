import AttendanceCore
import CXLSXWriter
import Foundation

/// A thin, safe wrapper over libxlsxwriter: one workbook written to one file, closed exactly once.
/// Not Sendable: build it, fill it and close it in one function.
final class XLSXWorkbook {
    private var handle: UnsafeMutablePointer<lxw_workbook>?
    let path: String

    init(path: String) throws {
        self.path = path
        guard let wb = workbook_new(path) else {
            throw StoreError.io(path: path, reason: "libxlsxwriter cannot create the workbook")
        }
        handle = wb
    }

    deinit {
        // Only reached when an error left the workbook open: write and discard it.
        if let handle { _ = workbook_close(handle) }
    }

    func addSheet(_ name: String) throws -> XLSXSheet {
        guard let wb = handle, let ws = workbook_add_worksheet(wb, name) else {
            throw StoreError.io(path: path, reason: "cannot add the sheet '\(name)'")
        }
        return XLSXSheet(ws: ws, path: path)
    }

    /// A cell format: bold (headers), and/or an Excel number format such as "dd/mm/yyyy" or "hh:mm:ss".
    func format(bold: Bool = false, numberFormat: String? = nil, wrap: Bool = false) -> UnsafeMutablePointer<lxw_format>? {
        guard let wb = handle, let f = workbook_add_format(wb) else { return nil }
        if bold { format_set_bold(f) }
        if let numberFormat { format_set_num_format(f, numberFormat) }
        if wrap { format_set_text_wrap(f) }
        return f
    }

    /// Writes the file. After this the workbook cannot be used.
    func close() throws {
        guard let wb = handle else { return }
        handle = nil
        let err = workbook_close(wb)
        guard err == LXW_NO_ERROR else {
            throw StoreError.io(path: path, reason: "writing the workbook failed: \(String(cString: lxw_strerror(err)))")
        }
    }
}

struct XLSXSheet {
    let ws: UnsafeMutablePointer<lxw_worksheet>
    let path: String

    func check(_ err: lxw_error, _ row: Int, _ col: Int) throws {
        guard err == LXW_NO_ERROR else {
            throw StoreError.io(path: path, reason: "cell (\(row + 1), \(col + 1)): \(String(cString: lxw_strerror(err)))")
        }
    }

    func write(_ row: Int, _ col: Int, _ text: String?, _ format: UnsafeMutablePointer<lxw_format>? = nil) throws {
        guard let text, !text.isEmpty else { return }
        try check(worksheet_write_string(ws, lxw_row_t(row), lxw_col_t(col), text, format), row, col)
    }

    func write(_ row: Int, _ col: Int, number: Double, _ format: UnsafeMutablePointer<lxw_format>? = nil) throws {
        try check(worksheet_write_number(ws, lxw_row_t(row), lxw_col_t(col), number, format), row, col)
    }

    /// A real date/time cell (an Excel serial number shown by `format`), local wall-clock fields.
    func write(
        _ row: Int, _ col: Int, year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Double = 0,
        _ format: UnsafeMutablePointer<lxw_format>?
    ) throws {
        var dt = lxw_datetime(
            year: Int32(year), month: Int32(month), day: Int32(day), hour: Int32(hour), min: Int32(minute), sec: second)
        try check(worksheet_write_datetime(ws, lxw_row_t(row), lxw_col_t(col), &dt, format), row, col)
    }

    func width(_ first: Int, _ last: Int, _ width: Double, _ format: UnsafeMutablePointer<lxw_format>? = nil) {
        _ = worksheet_set_column(ws, lxw_col_t(first), lxw_col_t(last), width, format)
    }

    func freeze(rows: Int, cols: Int = 0) {
        worksheet_freeze_panes(ws, lxw_row_t(rows), lxw_col_t(cols))
    }

    func autofilter(lastRow: Int, lastCol: Int) {
        _ = worksheet_autofilter(ws, 0, 0, lxw_row_t(max(0, lastRow)), lxw_col_t(lastCol))
    }
}
