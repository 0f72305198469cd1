using System;
using System.Runtime.InteropServices;
using AvatarLab.Native;

namespace AvatarLab
{
    // A rectangle in texture pixels (Unity order: row 0 at the bottom).
    public struct PixelRect
    {
        public int X, Y, Width, Height;

        public PixelRect(int x, int y, int width, int height) { X = x; Y = y; Width = width; Height = height; }
        public bool IsEmpty { get { return Width <= 0 || Height <= 0; } }

        public PixelRect Union(PixelRect o)
        {
            if (IsEmpty) return o;
            if (o.IsEmpty) return this;
            int x0 = Math.Min(X, o.X), y0 = Math.Min(Y, o.Y);
            int x1 = Math.Max(X + Width, o.X + o.Width), y1 = Math.Max(Y + Height, o.Y + o.Height);
            return new PixelRect(x0, y0, x1 - x0, y1 - y0);
        }

        public override string ToString() { return "(" + X + "," + Y + " " + Width + "x" + Height + ")"; }
    }

    // Writes pixel rows into the engine texture's CPU copy (same layout as Mirror).
    public interface IPixelWriter
    {
        void Write(byte[] source, int offset, int length);
    }

    // Bytes that every face together may upload in one engine frame (shared by a scene).
    public sealed class UploadBudget
    {
        int _left;
        public int BytesPerFrame { get; private set; }

        public UploadBudget(int bytesPerFrame) { Reset(bytesPerFrame); }

        public void Reset(int bytesPerFrame)
        {
            BytesPerFrame = Math.Max(0, bytesPerFrame);
            _left = BytesPerFrame;
        }

        public void NextFrame() { _left = BytesPerFrame; }
        public int Left { get { return _left; } }

        public int Take(int wanted)
        {
            int granted = Math.Min(Math.Max(0, wanted), _left);
            _left -= granted;
            return granted;
        }

        public void GiveBack(int bytes) { _left += Math.Max(0, bytes); }
    }

    // Turns a session's surface into texture updates:
    //  - Present (worker thread) brings the native surface to the audio position and copies only
    //    the changed rectangle into Mirror, flipped to Unity's bottom-up row order;
    //  - Upload (main thread) writes the pending rectangle to the texture, as many rows as the
    //    frame's budget allows; the rest stays pending for the next frame.
    // The JPEG decode happens inside avl_session_present, so it never runs on the main thread.
    public sealed class SurfacePresenter : IDisposable
    {
        readonly FaceSession _session;
        readonly object _nativeLock = new object(); // present vs dispose
        readonly object _mirrorLock = new object(); // worker writes vs main-thread upload
        GCHandle _pin;
        byte[] _scratch = new byte[0]; // one native copy of the dirty rect, top-down
        GCHandle _scratchPin;
        byte[] _neutral;
        PixelRect _pending;
        bool _disposed;

        public int Width { get; private set; }
        public int Height { get; private set; }
        public byte[] Mirror { get; private set; } // Width*Height*4 RGBA, row 0 = bottom
        public AvlFrameInfo LastFrame { get; private set; }
        public AvlStatus LastStatus { get; private set; }
        public long StarvedPresents { get; private set; }

        public SurfacePresenter(FaceSession session, int width, int height)
        {
            // 0x0: a motion-only session (mouth curves, no pixels); presents still move its clock.
            bool motionOnly = width == 0 && height == 0;
            if (!motionOnly && (width <= 0 || height <= 0)) throw new ArgumentException("surface size must be positive");
            _session = session;
            Width = width;
            Height = height;
            Mirror = new byte[width * height * 4];
            _pin = GCHandle.Alloc(Mirror, GCHandleType.Pinned);
            LastFrame = new AvlFrameInfo { frame_index = -1 };
        }

        public PixelRect Pending { get { lock (_mirrorLock) return _pending; } }

        // Worker thread (or any single thread). The first call captures the base image as the
        // neutral face. Returns the native status (Ok, NoNewFrame, or an error).
        public AvlStatus Present(long audioPositionMs)
        {
            lock (_nativeLock)
            {
                if (!Prepare()) return AvlStatus.BadState;
                AvlFrameInfo info;
                return Finish(_session.Present(audioPositionMs, out info), info);
            }
        }

        // As Present, at the heard position of the player's clock (the core's playback policy).
        public AvlStatus PresentPlayback(long audioBufferedMs, long audioPlayedMs, out AvlPlaybackAdvice advice)
        {
            lock (_nativeLock)
            {
                advice = default(AvlPlaybackAdvice);
                if (!Prepare()) return AvlStatus.BadState;
                AvlFrameInfo info;
                return Finish(_session.PresentPlayback(audioBufferedMs, audioPlayedMs, out advice, out info), info);
            }
        }

        bool Prepare()
        {
            if (_disposed || _session.IsDisposed) return false;
            if (_neutral == null)
            {
                if (Width > 0) CopyFromNative(0, 0, Width, Height);
                lock (_mirrorLock)
                {
                    _neutral = (byte[])Mirror.Clone();
                    _pending = new PixelRect(0, 0, Width, Height);
                }
            }
            return true;
        }

        AvlStatus Finish(AvlStatus status, AvlFrameInfo info)
        {
            LastStatus = status;
            if (status == AvlStatus.Ok || status == AvlStatus.NoNewFrame)
            {
                LastFrame = info;
                if (info.starved != 0) StarvedPresents++;
            }
            if (status == AvlStatus.Ok && info.dirty_width > 0 && info.dirty_height > 0)
                CopyFromNative(info.dirty_x, info.dirty_y, info.dirty_width, info.dirty_height);
            return status;
        }

        // Surface rect (top-down) -> Mirror (bottom-up): ONE native copy of the rectangle, then
        // the rows are flipped in managed memory (a P/Invoke per row cost more than the pixels).
        void CopyFromNative(int x, int y, int w, int h)
        {
            int rowBytes = w * 4;
            if (_scratch.Length < rowBytes * h)
            {
                if (_scratchPin.IsAllocated) _scratchPin.Free();
                _scratch = new byte[Width * Height * 4];
                _scratchPin = GCHandle.Alloc(_scratch, GCHandleType.Pinned);
            }
            _session.CopySurface(x, y, w, h, _scratchPin.AddrOfPinnedObject(), rowBytes, _scratch.Length);
            lock (_mirrorLock)
            {
                int stride = Width * 4;
                for (int r = 0; r < h; r++)
                    Buffer.BlockCopy(_scratch, r * rowBytes, Mirror, (Height - 1 - (y + r)) * stride + x * 4, rowBytes);
                _pending = _pending.Union(new PixelRect(x, Height - y - h, w, h));
            }
        }

        // Address of the pinned Mirror (Width*Height*4 bytes, bottom-up RGBA), e.g. for
        // Texture2D.LoadRawTextureData. Valid until Dispose; read it under Upload's rules (main thread).
        public IntPtr MirrorAddress { get { return _pin.IsAllocated ? _pin.AddrOfPinnedObject() : IntPtr.Zero; } }

        // Main thread: takes the whole pending rectangle at once (for an upload of the whole
        // mirror); false when nothing is pending or the budget does not cover the mirror.
        public bool TakeAll(UploadBudget budget)
        {
            lock (_mirrorLock)
            {
                if (_pending.IsEmpty) return false;
                int bytes = Mirror.Length;
                int granted = budget.Take(bytes);
                if (granted < bytes) { budget.GiveBack(granted); return false; }
                _pending = new PixelRect();
                return true;
            }
        }

        // Puts the neutral (base) face back, e.g. when the voice has stopped. False before the
        // first Present (no base image captured yet).
        public bool ShowNeutral()
        {
            lock (_mirrorLock)
            {
                if (_neutral == null) return false;
                Buffer.BlockCopy(_neutral, 0, Mirror, 0, Mirror.Length);
                _pending = new PixelRect(0, 0, Width, Height);
                return true;
            }
        }

        public byte[] NeutralCopy()
        {
            lock (_mirrorLock) return _neutral == null ? null : (byte[])_neutral.Clone();
        }

        // Main thread. Writes up to `budget` bytes of the pending rectangle (whole rows, bottom
        // row first) through `writer`; returns the bytes written (0: nothing to do or no budget).
        public int Upload(UploadBudget budget, IPixelWriter writer)
        {
            lock (_mirrorLock)
            {
                if (_pending.IsEmpty) return 0;
                int rowBytes = _pending.Width * 4;
                int granted = budget.Take(rowBytes * _pending.Height);
                int rows = granted / rowBytes;
                budget.GiveBack(granted - rows * rowBytes);
                if (rows == 0) return 0;
                int stride = Width * 4;
                if (_pending.Width == Width)
                {
                    // Full-width band: contiguous in both layouts.
                    writer.Write(Mirror, _pending.Y * stride, rows * stride);
                }
                else
                {
                    for (int r = 0; r < rows; r++)
                        writer.Write(Mirror, (_pending.Y + r) * stride + _pending.X * 4, rowBytes);
                }
                _pending = rows == _pending.Height
                    ? new PixelRect()
                    : new PixelRect(_pending.X, _pending.Y + rows, _pending.Width, _pending.Height - rows);
                return rows * rowBytes;
            }
        }

        public void Dispose()
        {
            lock (_nativeLock)
            {
                if (_disposed) return;
                _disposed = true;
                lock (_mirrorLock) { if (_pin.IsAllocated) _pin.Free(); }
                if (_scratchPin.IsAllocated) _scratchPin.Free();
            }
        }
    }
}
