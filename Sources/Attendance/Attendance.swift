// Attendance module.
