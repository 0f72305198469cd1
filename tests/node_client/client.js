// Usage: node client.js HOST:PORT PORTRAIT.png AUDIO.s16le(16 kHz mono)
// Loads protos/avatarlab/v1/avatarlab.proto at run time (no generated code), creates an avatar and
// runs one Animate session; prints a JSON summary on stdout.
const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const loader = require("@grpc/proto-loader");

const [target, portraitPath, audioPath] = process.argv.slice(2);
const protoRoot = path.resolve(__dirname, "..", "..", "protos");
const def = loader.loadSync(path.join(protoRoot, "avatarlab/v1/avatarlab.proto"), {
  includeDirs: [protoRoot], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
});
const api = grpc.loadPackageDefinition(def).avatarlab.v1;
const client = new api.AvatarService(target, grpc.credentials.createInsecure());

client.CreateAvatar({ display_name: "node", portrait_image: fs.readFileSync(portraitPath) }, (err, avatar) => {
  if (err) { console.error(err.message); process.exit(1); }
  const call = client.Animate();
  const summary = { avatar_id: avatar.avatar_id, started: null, frames: 0, pts: [], ended: null };
  call.on("data", (m) => {
    if (m.message === "started") summary.started = { fps: m.started.fps, width: m.started.width_px, height: m.started.height_px };
    if (m.message === "frame") { summary.frames += 1; summary.pts.push(m.frame.pts_ms); }
    if (m.message === "ended") summary.ended = { frames_sent: m.ended.stats.frames_sent };
  });
  call.on("error", (e) => { console.error(e.message); process.exit(1); });
  call.on("end", () => { console.log(JSON.stringify(summary)); client.close(); });
  call.write({ config: { avatar_id: avatar.avatar_id,
    audio_format: { encoding: "AUDIO_ENCODING_PCM_S16LE", sample_rate_hz: 16000, channels: 1 },
    video: { fps: 25, width_px: 64, height_px: 64, pixel_format: "PIXEL_FORMAT_RGB8" } } });
  const pcm = fs.readFileSync(audioPath);
  for (let i = 0; i < pcm.length; i += 3200) call.write({ audio: { data: pcm.subarray(i, i + 3200) } });
  call.write({ end_of_audio: {} });
  call.end();
});
