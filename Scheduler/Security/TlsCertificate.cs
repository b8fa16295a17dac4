using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace DurableTask.Scheduler.Security;

/// <summary>Loads the server certificate named by <c>Scheduler:Tls</c>: PKCS#12 (.pfx/.p12) or PEM certificate plus key.</summary>
public static class TlsCertificate
{
    public static X509Certificate2? Load(IConfiguration configuration)
    {
        var settings = new TlsSettings();
        configuration.GetSection(TlsSettings.Section).Bind(settings);
        return Load(settings);
    }

    public static X509Certificate2? Load(TlsSettings settings)
    {
        if (string.IsNullOrWhiteSpace(settings.CertificatePath))
        {
            if (!string.IsNullOrWhiteSpace(settings.KeyPath))
                throw new InvalidOperationException("Scheduler:Tls:KeyPath is set but Scheduler:Tls:CertificatePath is not.");
            return null;
        }

        string path = settings.CertificatePath;
        if (!File.Exists(path)) throw new InvalidOperationException($"Scheduler:Tls:CertificatePath '{path}' does not exist.");
        X509Certificate2 certificate;
        try
        {
            if (!string.IsNullOrWhiteSpace(settings.KeyPath))
            {
                if (!File.Exists(settings.KeyPath)) throw new InvalidOperationException($"Scheduler:Tls:KeyPath '{settings.KeyPath}' does not exist.");
                certificate = string.IsNullOrEmpty(settings.Password)
                    ? X509Certificate2.CreateFromPemFile(path, settings.KeyPath)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, settings.Password, settings.KeyPath);
            }
            else if (File.ReadAllText(path).Contains("-----BEGIN", StringComparison.Ordinal))
            {
                // Certificate and key in one PEM file.
                certificate = string.IsNullOrEmpty(settings.Password)
                    ? X509Certificate2.CreateFromPemFile(path)
                    : X509Certificate2.CreateFromEncryptedPemFile(path, settings.Password);
            }
            else
            {
                certificate = X509CertificateLoader.LoadPkcs12FromFile(path, settings.Password);
            }
        }
        catch (CryptographicException ex)
        {
            throw new InvalidOperationException($"Scheduler:Tls: could not load the certificate '{path}' ({ex.Message}). " +
                "Use a PKCS#12 file with Scheduler:Tls:Password, or PEM files with Scheduler:Tls:KeyPath.", ex);
        }

        if (!certificate.HasPrivateKey)
            throw new InvalidOperationException($"Scheduler:Tls: the certificate '{path}' has no private key; set Scheduler:Tls:KeyPath.");
        return certificate;
    }
}
