// The Java JSSE peer of the interop matrix (docs/interop.md).
//
//   java -cp BUILD/interop InteropPeer server JOBS
//   java -cp BUILD/interop InteropPeer client JOBS
//
// The jobs file and the output are those of test/interop/peer.py (its
// docstring has the format), with two differences: a job's key and
// certificate chain come as a PKCS#12 file (p12=, password "interop"),
// the form JSSE reads without extra code, and the cipher printed is
// JSSE's (IANA) name. One JVM serves every listener, or runs every client
// job: a JVM start costs more than a handshake.
//
// legacy=1 takes TLSv1 and TLSv1.1 out of jdk.tls.disabledAlgorithms for
// this process: Java 17 disables them by default, and a program may
// re-enable them this way (the property is read when JSSE first starts).

import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.util.*;
import javax.net.ssl.*;

public final class InteropPeer {
    private static final int TIMEOUT_MS = 10000;
    private static final List<String> ALL =
        List.of("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3");
    private static final char[] PASSWORD = "interop".toCharArray();

    private InteropPeer() {}

    static List<Map<String, String>> readJobs(String path) throws IOException {
        List<Map<String, String>> jobs = new ArrayList<>();
        for (String line : Files.readAllLines(Paths.get(path))) {
            line = line.trim();
            if (line.isEmpty())
                continue;
            Map<String, String> job = new HashMap<>();
            for (String w : line.split("\\s+")) {
                int i = w.indexOf('=');
                job.put(w.substring(0, i), w.substring(i + 1));
            }
            jobs.add(job);
        }
        return jobs;
    }

    static synchronized void report(String tag, int n, String status,
                                    String version, String cipher,
                                    boolean resumed, String sni,
                                    boolean echo, String reason) {
        String r = reason == null ? "-" : reason.trim().replaceAll("\\s+", " ");
        System.out.println("result tag=" + tag + " n=" + n + " status=" + status
            + " version=" + dash(version) + " cipher=" + dash(cipher)
            + " resumed=" + (resumed ? "yes" : "no") + " sni=" + dash(sni)
            + " echo=" + (echo ? "yes" : "no") + " reason="
            + (r.isEmpty() ? "-" : r));
        System.out.flush();
    }

    static String dash(String s) {
        return s == null || s.isEmpty() ? "-" : s;
    }

    /** The versions from min to max, or null for JSSE's default. */
    static String[] versions(Map<String, String> job) {
        String min = job.getOrDefault("min", "-");
        String max = job.getOrDefault("max", "-");
        if (min.equals("-") && max.equals("-"))
            return null;
        int lo = min.equals("-") ? 2 : ALL.indexOf(min);
        int hi = max.equals("-") ? 3 : ALL.indexOf(max);
        return ALL.subList(lo, hi + 1).toArray(new String[0]);
    }

    static SSLContext context(Map<String, String> job) throws Exception {
        KeyManager[] kms = null;
        if (job.containsKey("p12")) {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (InputStream in = new FileInputStream(job.get("p12"))) {
                ks.load(in, PASSWORD);
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(
                KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, PASSWORD);
            kms = kmf.getKeyManagers();
        }
        TrustManager[] tms = null;
        if (job.containsKey("ca")) {
            KeyStore ts = KeyStore.getInstance(KeyStore.getDefaultType());
            ts.load(null, null);
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            try (InputStream in = new FileInputStream(job.get("ca"))) {
                int i = 0;
                for (java.security.cert.Certificate c : cf.generateCertificates(in))
                    ts.setCertificateEntry("ca" + i++, c);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(
                TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ts);
            tms = tmf.getTrustManagers();
        }
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kms, tms, null);
        return ctx;
    }

    /** Re-enables TLSv1 and TLSv1.1 when a job asks for them (see top). */
    static void allowLegacy(List<Map<String, String>> jobs) {
        boolean legacy = false;
        for (Map<String, String> job : jobs)
            legacy |= "1".equals(job.get("legacy"));
        if (!legacy)
            return;
        String prop = Security.getProperty("jdk.tls.disabledAlgorithms");
        List<String> keep = new ArrayList<>();
        for (String a : prop.split(",")) {
            String t = a.trim();
            if (!t.equals("TLSv1") && !t.equals("TLSv1.1"))
                keep.add(t);
        }
        Security.setProperty("jdk.tls.disabledAlgorithms", String.join(", ", keep));
    }

    static String reason(Exception e) {
        String m = e.getMessage();
        return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
    }

    // ---- resumption -------------------------------------------------------
    //
    // JSSE has no public "was this session resumed" call. A resumed
    // handshake reuses the session it resumed: for TLS 1.2 the same session
    // id, for TLS 1.3 a session whose creation time is that of the session
    // the PSK came from (JSSE copies it). Both sides compare with what they
    // saw before: the client with its previous connection's session, the
    // server with every session it created on this listener.

    static boolean sameSession(SSLSession a, SSLSession b) {
        if (a == null || b == null)
            return false;
        if (a.getCreationTime() == b.getCreationTime())
            return true;
        byte[] x = a.getId(), y = b.getId();
        return x != null && x.length > 0 && Arrays.equals(x, y);
    }

    // ---- server -----------------------------------------------------------

    static void serveOne(Map<String, String> job, SSLSocket s, int n,
                         List<SSLSession> seen) {
        String tag = job.get("tag");
        String sni = null;
        boolean reported = false;
        try {
            s.setSoTimeout(TIMEOUT_MS);
            s.startHandshake();
            SSLSession sess = s.getSession();
            if (sess instanceof ExtendedSSLSession) {
                for (SNIServerName name :
                     ((ExtendedSSLSession) sess).getRequestedServerNames())
                    if (name instanceof SNIHostName)
                        sni = ((SNIHostName) name).getAsciiName();
            }
            boolean resumed;
            synchronized (seen) {
                resumed = false;
                for (SSLSession old : seen)
                    resumed |= sameSession(old, sess);
                seen.add(sess);
            }
            if (!sess.isValid() && sess.getProtocol().equals("NONE"))
                throw new SSLHandshakeException("no session");
            report(tag, n, "ok", sess.getProtocol(), sess.getCipherSuite(),
                   resumed, sni, true, null);
            reported = true;
            InputStream in = s.getInputStream();
            OutputStream out = s.getOutputStream();
            byte[] buf = new byte[65536];
            int got;
            while ((got = in.read(buf)) > 0) {
                out.write(buf, 0, got);
                out.flush();
            }
        } catch (Exception e) {
            if (!reported)
                report(tag, n, "error", null, null, false, null, false,
                       reason(e));
        } finally {
            try {
                s.close();
            } catch (IOException e) {
                // the client's way of closing is not this peer's concern
            }
        }
    }

    static void server(List<Map<String, String>> jobs) throws Exception {
        List<SSLServerSocket> socks = new ArrayList<>();
        for (Map<String, String> job : jobs) {
            SSLServerSocket ss = (SSLServerSocket) context(job)
                .getServerSocketFactory()
                .createServerSocket(0, 16, InetAddress.getByName("127.0.0.1"));
            String[] v = versions(job);
            if (v != null)
                ss.setEnabledProtocols(v);
            if ("1".equals(job.get("mutual")))
                ss.setNeedClientAuth(true);
            socks.add(ss);
            System.out.println("listen tag=" + job.get("tag") + " port="
                               + ss.getLocalPort());
        }
        for (int i = 0; i < jobs.size(); i++) {
            Map<String, String> job = jobs.get(i);
            SSLServerSocket ss = socks.get(i);
            Thread t = new Thread(() -> {
                List<SSLSession> seen = new ArrayList<>();
                for (int n = 1;; n++) {
                    try {
                        SSLSocket s = (SSLSocket) ss.accept();
                        final int num = n;
                        Thread c = new Thread(() -> serveOne(job, s, num, seen));
                        c.setDaemon(true);
                        c.start();
                    } catch (IOException e) {
                        return;
                    }
                }
            });
            t.setDaemon(true);
            t.start();
        }
        System.out.println("ready");
        System.out.flush();
        // The runner stops this process by its PID; stdin's end stops it too.
        while (System.in.read() >= 0) {
        }
    }

    // ---- client -----------------------------------------------------------

    static SSLSession connectOnce(Map<String, String> job, SSLContext ctx,
                                  int n, SSLSession previous) {
        String tag = job.get("tag");
        String sni = job.get("sni");
        int port = Integer.parseInt(job.get("port"));
        String line = "interop " + tag + " " + n + "\n";
        SSLSession sess = null;
        try (Socket raw = new Socket()) {
            raw.connect(new InetSocketAddress(job.getOrDefault("host",
                "127.0.0.1"), port), TIMEOUT_MS);
            raw.setSoTimeout(TIMEOUT_MS);
            // Layered over a connected socket under the name to check: the
            // name is sent as SNI and, with HTTPS identification, checked
            // against the server's certificate; sessions are cached under
            // (name, port).
            SSLSocket s = (SSLSocket) ctx.getSocketFactory()
                .createSocket(raw, sni, port, true);
            String[] v = versions(job);
            if (v != null)
                s.setEnabledProtocols(v);
            SSLParameters p = s.getSSLParameters();
            p.setEndpointIdentificationAlgorithm("HTTPS");
            // JSSE sends no SNI by itself for a name without a dot
            // ("localhost"): name it explicitly.
            p.setServerNames(List.of(new SNIHostName(sni)));
            s.setSSLParameters(p);
            s.startHandshake();
            sess = s.getSession();
            if (sess.getProtocol().equals("NONE"))
                throw new SSLHandshakeException("handshake failed");
            boolean resumed = sameSession(previous, sess);
            OutputStream out = s.getOutputStream();
            out.write(line.getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            int b;
            while ((b = in.read()) >= 0) {
                got.write(b);
                if (b == '\n')
                    break;
            }
            String reply = got.toString(StandardCharsets.US_ASCII);
            boolean echo = reply.equals(line);
            report(tag, n, echo ? "ok" : "error", sess.getProtocol(),
                   sess.getCipherSuite(), resumed, sni, echo,
                   echo ? null : "echo '" + reply.trim() + "'");
            s.close();
            return sess;
        } catch (Exception e) {
            report(tag, n, "error", sess == null ? null : sess.getProtocol(),
                   sess == null ? null : sess.getCipherSuite(), false, sni,
                   false, reason(e));
            return null;
        }
    }

    static void client(List<Map<String, String>> jobs) throws Exception {
        for (Map<String, String> job : jobs) {
            SSLContext ctx = context(job);
            int count = Integer.parseInt(job.getOrDefault("count", "1"));
            SSLSession previous = null;
            for (int n = 1; n <= count; n++)
                previous = connectOnce(job, ctx, n, previous);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2 || !(args[0].equals("server")
                                  || args[0].equals("client"))) {
            System.err.println("usage: InteropPeer server|client JOBS");
            System.exit(2);
        }
        List<Map<String, String>> jobs = readJobs(args[1]);
        allowLegacy(jobs);
        if (args[0].equals("server"))
            server(jobs);
        else
            client(jobs);
    }
}
