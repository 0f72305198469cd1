using System;
using System.Collections.Generic;
using System.Threading;

namespace AvatarLab
{
    // Work the main thread hands to the PresentWorker. Requests coalesce: a job queued twice
    // before it runs runs once, with the newest target.
    public abstract class PresentJob
    {
        internal int Queued;
        public abstract void Run();
    }

    // One background thread per connection that presents (decodes) frames for every face, so
    // the game thread only copies finished pixels. One thread, so each session's presentation
    // functions are only ever called from one thread at a time, as the C API requires.
    public sealed class PresentWorker : IDisposable
    {
        readonly Queue<PresentJob> _queue = new Queue<PresentJob>();
        readonly object _gate = new object();
        readonly Thread _thread;
        bool _stop;

        // Called with exceptions thrown by jobs (on the worker thread).
        public Action<Exception> OnJobError;

        public PresentWorker(string name)
        {
            _thread = new Thread(Loop) { IsBackground = true, Name = name };
            _thread.Start();
        }

        public void Request(PresentJob job)
        {
            if (Interlocked.Exchange(ref job.Queued, 1) == 1) return;
            lock (_gate)
            {
                _queue.Enqueue(job);
                Monitor.Pulse(_gate);
            }
        }

        // Blocks until every job queued so far has run (tests, and teardown of a face).
        public void Flush()
        {
            var done = new FlushJob();
            Request(done);
            done.Done.WaitOne();
        }

        void Loop()
        {
            while (true)
            {
                PresentJob job;
                lock (_gate)
                {
                    while (_queue.Count == 0 && !_stop) Monitor.Wait(_gate);
                    if (_stop) return;
                    job = _queue.Dequeue();
                }
                Interlocked.Exchange(ref job.Queued, 0);
                try { job.Run(); }
                catch (Exception e)
                {
                    // A failing face must not stop the worker the other faces share.
                    Action<Exception> report = OnJobError;
                    if (report != null) report(e);
                }
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _stop = true;
                Monitor.Pulse(_gate);
            }
            _thread.Join();
        }

        sealed class FlushJob : PresentJob
        {
            public readonly ManualResetEvent Done = new ManualResetEvent(false);
            public override void Run() { Done.Set(); }
        }
    }
}
