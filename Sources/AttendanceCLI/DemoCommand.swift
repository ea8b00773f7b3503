import ArgumentParser
import FaceEngine
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The embedded default: run the face engine on the bundled sample images (what `make run` shows)."
    )

    @Option(help: "Folder with the sample images (make testdata fetches them).")
    var samples: String = ".testdata"

    func run() async throws {
        let engine: FaceEngine
        do { engine = try FaceEngine() } catch { throw failLine("\(error)") }
        let names = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut.png", "32bit.png", "messi5.jpg"]
        var descriptors: [(String, FaceDescriptor)] = []
        for name in names {
            let path = samples + "/" + name
            guard FileManager.default.fileExists(atPath: path) else { continue }
            do {
                let image = try Image(contentsOf: path)
                let faces = try engine.faces(in: image)
                print(ImageFaces(image: path, width: image.width, height: image.height, faces: faces).text(withEmbedding: false))
                if let d = faces.first?.descriptor { descriptors.append((name, d)) }
            } catch {
                print("\(path): \(error)")
            }
        }
        guard let reference = descriptors.first else { throw failLine("no sample images in \(samples) (run `make testdata`)") }
        print("\nDistances to \(reference.0) (match below 0.6):")
        for (name, d) in descriptors.dropFirst() {
            let dist = reference.1.distance(to: d)
            print(String(format: "  %-14@ %.3f  %@", name as NSString, dist, dist < 0.6 ? "match" : "no match"))
        }
    }
}
