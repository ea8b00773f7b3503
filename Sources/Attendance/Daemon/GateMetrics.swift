import AttendanceCore
import Metrics
import Prometheus

/// Every metric the daemon exports, with its help text: one place, so `promtool check metrics` finds a
/// `# HELP` for each and the names follow Prometheus' conventions (counters end in `_total`, units in names).
public enum GateMetrics {
    public static let help: [String: String] = [
        "attendance_frames_total": "Frames the camera's pipeline processed.",
        "attendance_faces_total": "Faces detected in processed frames.",
        "attendance_matches_total": "Face embeddings whose nearest enrolled student was within the threshold.",
        "attendance_unknown_faces_total": "Tracks decided as a face nobody enrolled.",
        "attendance_decisions_total": "Attendance events recorded.",
        "attendance_dropped_frames_total": "Frames the camera produced that the pipeline never saw (gaps in the sequence).",
        "attendance_stage_seconds": "Time spent per pipeline stage (detect, landmarks, embed, liveness, search, store).",
        "attendance_liveness_checks_total": "Passive liveness checks run (embedded frames of undecided tracks).",
        "attendance_spoofs_total":
            "Recognised tracks whose face did not look real: held for the teacher's review, or refused (enforce).",
        "attendance_decision_latency_seconds": "Time from a face's first sighting to its stored record.",
        "attendance_outbox_depth": "Records queued for the sector database and not delivered yet.",
        "attendance_gallery_version": "Version of the enrolled faces the cameras search.",
        "attendance_gallery_embeddings": "Enrolled face embeddings the cameras search.",
        "attendance_gallery_unreadable_embeddings": "Enrolled embeddings skipped because they could not be opened.",
        "attendance_store_failures_total": "Writes of decided records the database refused (disk full, locked).",
        "attendance_unstored_records": "Decided records held in memory because the database refused them.",
        "attendance_dropped_records_total": "Decided records given up (memory queue full, or dropped at shutdown).",
        "attendance_clock_refusals_total": "Decisions not recorded because the clock could not be trusted.",
        "attendance_clock_trusted":
            "1 while the clock can date records (not behind the high-water mark, not before the release), else 0.",
        "attendance_clock_synchronized": "1 while the kernel reports the clock synchronised (no STA_UNSYNC), else 0.",
        "attendance_cameras_unavailable": "Cameras failed or delivering no frames for longer than the health limit.",
    ]
}

/// swift-metrics' factory for the Prometheus registry, giving each metric its help text from `GateMetrics.help`.
public struct GateMetricsFactory: MetricsFactory {
    public let registry: PrometheusCollectorRegistry
    let buckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(
            metricName: label, unitName: "", helpText: GateMetrics.help[label] ?? label.replacingOccurrences(of: "_", with: " "))
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        dimensions.isEmpty
            ? registry.makeCounter(descriptor: descriptor(label))
            : registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        dimensions.isEmpty
            ? registry.makeCounter(descriptor: descriptor(label))
            : registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        dimensions.isEmpty
            ? registry.makeGauge(descriptor: descriptor(label))
            : registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        dimensions.isEmpty
            ? registry.makeGauge(descriptor: descriptor(label))
            : registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        dimensions.isEmpty
            ? registry.makeDurationHistogram(descriptor: descriptor(label), buckets: buckets)
            : registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: buckets)
    }
    public func destroyCounter(_ handler: any CounterHandler) {
        if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
    }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
    }
    public func destroyRecorder(_ handler: any RecorderHandler) {
        if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
    }
    public func destroyMeter(_ handler: any MeterHandler) {
        if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
    }
    public func destroyTimer(_ handler: any TimerHandler) {
        if let h = handler as? Histogram<Duration> { registry.unregisterDurationHistogram(h) }
    }
}
