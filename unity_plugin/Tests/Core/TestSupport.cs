// Helpers for the binding tests: the AvatarLab service as a child process on a free loopback
// port (as client_core/tests/test_support.cc does), repository files, WAV reading, and a
// managed "texture" that receives uploads.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Text;
using NUnit.Framework;

namespace AvatarLab.Tests
{
    static class Env
    {
        public static string RepoRoot()
        {
            string env = Environment.GetEnvironmentVariable("AVATARLAB_REPO_ROOT");
            if (!string.IsNullOrEmpty(env)) return env;
            for (string dir = Directory.GetCurrentDirectory(); dir != null; dir = Path.GetDirectoryName(dir))
                if (Directory.Exists(Path.Combine(dir, "avatar_service/assets"))) return dir;
            throw new InvalidOperationException("repository root not found; set AVATARLAB_REPO_ROOT");
        }

        public static string AvatarlabBin()
        {
            string env = Environment.GetEnvironmentVariable("AVATARLAB_BIN");
            return string.IsNullOrEmpty(env) ? Path.Combine(RepoRoot(), ".venv/bin/avatarlab") : env;
        }

        // CI sets AVL_REQUIRE_LIVE=1 so a missing service fails instead of skipping.
        public static void SkipOrFail(string reason)
        {
            if (Environment.GetEnvironmentVariable("AVL_REQUIRE_LIVE") == "1") Assert.Fail(reason + " [AVL_REQUIRE_LIVE=1]");
            Assert.Ignore(reason);
        }

        public static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        public static string TempDir(string prefix)
        {
            string dir = Path.Combine(Path.GetTempPath(), prefix + Guid.NewGuid().ToString("N").Substring(0, 8));
            Directory.CreateDirectory(dir);
            return dir;
        }

        // 16-bit PCM WAV -> interleaved samples.
        public static short[] ReadWav(string path, out int rate, out int channels)
        {
            byte[] d = File.ReadAllBytes(path);
            if (d.Length < 12 || Encoding.ASCII.GetString(d, 0, 4) != "RIFF" || Encoding.ASCII.GetString(d, 8, 4) != "WAVE")
                throw new InvalidDataException(path + ": not a RIFF/WAVE file");
            rate = 0; channels = 0;
            for (int at = 12; at + 8 <= d.Length;)
            {
                string id = Encoding.ASCII.GetString(d, at, 4);
                int size = BitConverter.ToInt32(d, at + 4);
                int body = at + 8;
                if (id == "fmt ")
                {
                    if (BitConverter.ToInt16(d, body) != 1 || BitConverter.ToInt16(d, body + 14) != 16)
                        throw new InvalidDataException(path + ": only 16-bit PCM WAV is supported");
                    channels = BitConverter.ToInt16(d, body + 2);
                    rate = BitConverter.ToInt32(d, body + 4);
                }
                else if (id == "data" && rate > 0)
                {
                    int n = Math.Min(size, d.Length - body) / 2;
                    var s = new short[n];
                    Buffer.BlockCopy(d, body, s, 0, n * 2);
                    return s;
                }
                at = body + size + (size & 1);
            }
            throw new InvalidDataException(path + ": no fmt/data chunk");
        }
    }

    // `avatarlab serve --model tiny` on a loopback port; its output goes to a log file.
    sealed class ServerProcess : IDisposable
    {
        readonly Process _process;
        public readonly string Target;
        public readonly string Dir;
        readonly string _log;

        public ServerProcess(IDictionary<string, string> env)
        {
            string bin = Env.AvatarlabBin();
            if (!File.Exists(bin)) throw new FileNotFoundException("avatarlab executable not found at " + bin + " (set AVATARLAB_BIN)");
            Dir = Env.TempDir("avl-unity-live-");
            _log = Path.Combine(Dir, "server.log");
            Target = "127.0.0.1:" + Env.FreePort();
            var psi = new ProcessStartInfo("/bin/sh",
                "-c \"exec '" + bin + "' serve --listen " + Target + " --store '" + Path.Combine(Dir, "store") +
                "' --model tiny --grace 1 >'" + _log + "' 2>&1\"")
            { UseShellExecute = false };
            foreach (var kv in env) psi.EnvironmentVariables[kv.Key] = kv.Value;
            _process = Process.Start(psi);
        }

        public string LogTail()
        {
            try
            {
                string s = File.ReadAllText(_log);
                return s.Length > 3000 ? s.Substring(s.Length - 3000) : s;
            }
            catch (IOException e) { return "(no log: " + e.Message + ")"; }
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                // SIGTERM for a graceful drain (Process.Kill would be SIGKILL).
                Process.Start(new ProcessStartInfo("kill", "-TERM " + _process.Id) { UseShellExecute = false }).WaitForExit();
                if (!_process.WaitForExit(10000)) _process.Kill();
            }
            try { Directory.Delete(Dir, true); }
            catch (IOException) { /* the OS may still hold a file; a temp dir left behind is harmless */ }
        }
    }

    // Stands in for Texture2D's CPU data: receives SurfacePresenter.Upload rows.
    sealed class ManagedTexture : IPixelWriter
    {
        public readonly byte[] Pixels;
        public long BytesWritten;
        public ManagedTexture(int width, int height) { Pixels = new byte[width * height * 4]; }

        public void Write(byte[] source, int offset, int length)
        {
            Buffer.BlockCopy(source, offset, Pixels, offset, length);
            BytesWritten += length;
        }
    }
}
