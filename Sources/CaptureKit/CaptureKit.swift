// CaptureKit module.
