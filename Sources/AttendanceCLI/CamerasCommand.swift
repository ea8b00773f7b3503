import ArgumentParser
import AttendanceCore
import CaptureKit
import Foundation

/// `attendance cameras`: what cameras this machine sees, and one frame from any source.
struct CamerasCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cameras",
        abstract: "List the V4L2 cameras with their formats and sizes, or save a snapshot from a camera, stream or file.",
        discussion: """
            A camera source is written the same way everywhere (config file, command line):
              v4l2:/dev/video0                 a USB camera (V4L2)
              rtsp://user:pass@10.0.0.5/live   an IP camera (RTSP over TCP)
              file:gate.avi                    a recorded video

            Examples:
              attendance cameras                         list /dev/video* capture devices
              attendance cameras snapshot v4l2:/dev/video0 -o gate.jpg
              attendance cameras snapshot file:gate.avi --skip 50 -o frame50.jpg
            """,
        subcommands: [List.self, Snapshot.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List V4L2 capture devices (/dev/video*) with their pixel formats, sizes and frame rates."
        )

        @Option(name: .customLong("device"), help: ArgumentHelp("Also probe this node (repeatable).", valueName: "path"))
        var devices: [String] = []

        func run() throws {
            let cameras = V4L2Camera.enumerate(extraPaths: devices)
            if cameras.isEmpty {
                print(
                    "No V4L2 capture devices found (looked at /dev/video*\(devices.isEmpty ? "" : " and " + devices.joined(separator: ", ")))."
                )
                print("Check that the camera is plugged in and that this user is in the 'video' group.")
                return
            }
            for camera in cameras {
                print("\(camera.path)  \(camera.card)  (driver \(camera.driver), \(camera.busInfo))")
                for offer in camera.formats {
                    let sizes = offer.sizes.map(\.description).joined(separator: ", ")
                    let name = offer.description.isEmpty ? "" : " (\(offer.description))"
                    print("  \(offer.format)\(name): \(sizes.isEmpty ? "no sizes listed" : sizes)")
                }
            }
        }
    }

    struct Snapshot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "snapshot",
            abstract: "Save one frame from a camera source as an image (.jpg, .png or .bmp by extension)."
        )

        @Argument(help: ArgumentHelp("v4l2:/dev/videoN, rtsp://... or file:PATH.", valueName: "source"))
        var source: String

        @Option(name: .shortAndLong, help: ArgumentHelp("Where to write the image.", valueName: "file"))
        var output: String

        @Option(help: "Frames to let pass first (a USB camera's exposure settles in a few).")
        var skip: Int = 0

        @Option(help: "Requested width for a V4L2 camera (the nearest offered size is used).")
        var width: Int = 640

        @Option(help: "Requested height for a V4L2 camera.")
        var height: Int = 480

        @Option(help: "Seconds to wait for a frame before giving up.")
        var timeout: Double = 10

        func validate() throws {
            guard skip >= 0 else { throw ValidationError("--skip must be 0 or more") }
            guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        }

        private enum Outcome: Sendable {
            case frame(Frame)
            case ended
            case timedOut(String)
        }

        func run() async throws {
            var options = CaptureOptions(width: width, height: height)
            options.pacing = .asFastAsPossible // a file: no need to wait for its frame rate
            options.initialBackoff = .milliseconds(250)
            let camera: any FrameSource
            do { camera = try CameraSource.make(source, options: options) } catch { throw failLine("\(error)") }
            let skip = self.skip
            let outcome: Outcome
            do {
                outcome = try await withThrowingTaskGroup(of: Outcome.self) { group in
                    group.addTask {
                        var iterator = camera.makeAsyncIterator()
                        var seen = 0
                        while let frame = try await iterator.next() {
                            if seen == skip { return .frame(frame) }
                            seen += 1
                        }
                        return Task.isCancelled ? .timedOut("") : .ended
                    }
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(Int(timeout * 1000)))
                        if case .reconnecting(let error) = camera.state { return .timedOut(" (last error: \(error))") }
                        return .timedOut("")
                    }
                    let first = try await group.next() ?? .timedOut("")
                    group.cancelAll()
                    return first
                }
            } catch {
                throw failLine("\(error)")
            }
            switch outcome {
            case .frame(let frame):
                do { try frame.write(to: output) } catch { throw failLine("\(error)") }
                print("\(output): \(frame.width)x\(frame.height) frame \(frame.sequence) from \(camera.cameraID)")
            case .ended:
                throw failLine("\(source): ended before frame \(skip)")
            case .timedOut(let reason):
                throw failLine("\(source): no frame within \(timeout) s\(reason)")
            }
        }
    }
}
