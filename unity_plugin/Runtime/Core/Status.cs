using System;
using System.Runtime.InteropServices;
using System.Text;
using AvatarLab.Native;

namespace AvatarLab
{
    // avl_status values (client_core/include/avatarlab/avatarlab.h).
    public enum AvlStatus
    {
        Ok = 0,
        NoNewFrame = 1,
        InvalidArgument = -1,
        VersionMismatch = -2,
        BadState = -3,
        BufferTooSmall = -4,
        OutOfMemory = -5,
        Unavailable = -10,
        Unauthenticated = -11,
        NotFound = -12,
        ResourceExhausted = -13,
        FailedPrecondition = -14,
        DeadlineExceeded = -15,
        Cancelled = -16,
        Rejected = -17,
        ServerInternal = -18,
        Protocol = -30,
        Decode = -31,
        Internal = -99,
    }

    // A failed native call: the status code plus the library's detailed message (call, target,
    // what to check).
    public sealed class AvatarLabException : Exception
    {
        public AvlStatus Status { get; private set; }

        public AvatarLabException(AvlStatus status, string message) : base(message) { Status = status; }

        // Throws for a negative status, with avl_last_error of this thread (read at once, before
        // any other native call can overwrite it).
        internal static void Check(int status, string call)
        {
            if (status >= 0) return;
            string detail = Utf8.Decode(NativeMethods.avl_last_error());
            throw new AvatarLabException((AvlStatus)status,
                call + " failed: " + StatusName(status) + (detail.Length > 0 ? " - " + detail : ""));
        }

        public static string StatusName(int status)
        {
            return Utf8.Decode(NativeMethods.avl_status_string(status));
        }
    }

    // UTF-8 in and out of the native library, identical on Mono, IL2CPP and .NET.
    public static class Utf8
    {
        // NUL-terminated bytes; null stays null (the C API takes NULL for "none").
        public static byte[] Encode(string s)
        {
            if (s == null) return null;
            int n = Encoding.UTF8.GetByteCount(s);
            byte[] bytes = new byte[n + 1];
            Encoding.UTF8.GetBytes(s, 0, s.Length, bytes, 0);
            return bytes;
        }

        public static string Decode(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int n = 0;
            while (Marshal.ReadByte(p, n) != 0) n++;
            if (n == 0) return "";
            byte[] bytes = new byte[n];
            Marshal.Copy(p, bytes, 0, n);
            return Encoding.UTF8.GetString(bytes);
        }

        public static string DecodeBuffer(byte[] buffer)
        {
            int n = Array.IndexOf(buffer, (byte)0);
            return Encoding.UTF8.GetString(buffer, 0, n < 0 ? buffer.Length : n);
        }
    }
}
