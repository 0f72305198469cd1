// One SafeHandle per native object type. A child (client, avatar, list, session) holds a
// reference count on its parent, so a parent's release runs only after every child's, whatever
// order the garbage collector or the game finalizes them in.
using System;
using System.Runtime.InteropServices;

namespace AvatarLab.Native
{
    public abstract class AvlHandle : SafeHandle
    {
        SafeHandle _parent;

        protected AvlHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        // Called right after the native create/open call succeeded.
        internal void KeepAlive(SafeHandle parent)
        {
            if (parent == null) return;
            bool added = false;
            parent.DangerousAddRef(ref added);
            if (added) _parent = parent;
        }

        protected sealed override bool ReleaseHandle()
        {
            IntPtr h = handle;
            Release(ref h);
            handle = IntPtr.Zero;
            SafeHandle parent = _parent;
            _parent = null;
            if (parent != null) parent.DangerousRelease();
            return true;
        }

        protected abstract void Release(ref IntPtr h);
    }

    public sealed class ContextHandle : AvlHandle
    {
        [Preserve] public ContextHandle() { } // created only by the marshaller
        protected override void Release(ref IntPtr h) { NativeMethods.avl_context_release(ref h); }
    }

    public sealed class ClientHandle : AvlHandle
    {
        [Preserve] public ClientHandle() { } // created only by the marshaller
        protected override void Release(ref IntPtr h) { NativeMethods.avl_client_release(ref h); }
    }

    public sealed class AvatarHandle : AvlHandle
    {
        [Preserve] public AvatarHandle() { } // created only by the marshaller
        protected override void Release(ref IntPtr h) { NativeMethods.avl_avatar_release(ref h); }
    }

    public sealed class AvatarListHandle : AvlHandle
    {
        [Preserve] public AvatarListHandle() { } // created only by the marshaller
        protected override void Release(ref IntPtr h) { NativeMethods.avl_avatar_list_release(ref h); }
    }

    public sealed class SessionHandle : AvlHandle
    {
        [Preserve] public SessionHandle() { } // created only by the marshaller
        // Cancels, joins the session's threads (milliseconds) and frees the surface.
        protected override void Release(ref IntPtr h) { NativeMethods.avl_session_release(ref h); }
    }
}
