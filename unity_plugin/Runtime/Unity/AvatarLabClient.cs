using System;
using UnityEngine;

namespace AvatarLab.Unity
{
    // The scene's connection to the AvatarLab service. Many AvatarFace components share one
    // (one gRPC channel, one present thread, one per-frame texture upload budget). Put one in the
    // scene, or let the first AvatarFace create it.
    [DefaultExecutionOrder(-100)] // renew the upload budget before any face's Update
    [DisallowMultipleComponent]
    [AddComponentMenu("AvatarLab/AvatarLab Client")]
    public sealed class AvatarLabClient : MonoBehaviour
    {
        [Tooltip("host:port of the AvatarLab service, or any gRPC target (dns:///avatars.example.com:443)")]
        public string address = "127.0.0.1:50051";
        [Tooltip("Sent as 'authorization: Bearer <token>'; empty: none. Do not ship secrets in builds.")]
        public string bearerToken = "";
        public bool useTls;
        [Tooltip("PEM root certificates for TLS; empty: the system's roots")]
        public TextAsset tlsRootCertificates;
        [Tooltip("Bytes of face texture all faces together may upload per frame; the rest waits a frame")]
        public int uploadBudgetBytesPerFrame = 2 * 1024 * 1024;
        public LogLevel nativeLogLevel = LogLevel.Info;

        static AvatarLabClient _shared;
        AvatarLabConnection _connection;
        PresentWorker _worker;
        UploadBudget _budget;

        // The client faces use when none is assigned: the first active one in the scene.
        public static AvatarLabClient Shared
        {
            get
            {
                if (_shared == null) _shared = FindObjectOfType<AvatarLabClient>();
                if (_shared == null) _shared = new GameObject("AvatarLab Client").AddComponent<AvatarLabClient>();
                return _shared;
            }
        }

        // Created on first use (main thread). Throws AvatarLabException / DllNotFoundException
        // with a message naming what to fix.
        public AvatarLabConnection Connection
        {
            get
            {
                if (_connection == null)
                {
                    UnityLog.Install();
                    AvatarLabRuntime.Level = nativeLogLevel;
                    _connection = new AvatarLabConnection(new ConnectionSettings
                    {
                        Address = address,
                        BearerToken = bearerToken,
                        Transport = useTls ? Transport.Tls : Transport.Plaintext,
                        TlsRootCertsPem = tlsRootCertificates != null ? tlsRootCertificates.text : null,
                    });
                }
                return _connection;
            }
        }

        public PresentWorker Worker
        {
            get
            {
                if (_worker == null)
                {
                    _worker = new PresentWorker("AvatarLab present");
                    _worker.OnJobError = e => Debug.LogException(e);
                }
                return _worker;
            }
        }

        public UploadBudget Budget
        {
            get { return _budget ?? (_budget = new UploadBudget(uploadBudgetBytesPerFrame)); }
        }

        void Awake()
        {
            if (_shared == null) _shared = this;
        }

        void Update()
        {
            if (_budget != null && _budget.BytesPerFrame != uploadBudgetBytesPerFrame) _budget.Reset(uploadBudgetBytesPerFrame);
            else if (_budget != null) _budget.NextFrame();
        }

        void OnDestroy()
        {
            // Faces release their sessions in OnDisable, which runs before this on scene unload.
            if (_worker != null) _worker.Dispose();
            if (_connection != null) _connection.Dispose();
            _worker = null;
            _connection = null;
            if (_shared == this) _shared = null;
        }
    }
}
