package image

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeEngine serves the three Engine API calls docker-daemon: makes, on
// a unix socket, with archive as the one image "app:1"; status, when not
// 0, answers every /images/ call. The real engines (dockerd, podman
// system service) are e2e's (TestDockerDaemon).
func fakeEngine(t *testing.T, version string, archive []byte, status int) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(version)) })
	mux.HandleFunc("/images/", func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/images/app:1/")
		switch {
		case status != 0:
			http.Error(w, `{"message":"engine says no"}`, status)
		case !ok:
			http.Error(w, `{"message":"reference does not exist"}`, http.StatusNotFound)
		case name == "json":
			w.Write([]byte(`{"Size": 123}`))
		case name == "get":
			w.Write(archive)
		}
	})
	sock := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock
}

const dockerVersion = `{"Version":"28.2.2","Components":[{"Name":"Engine","Version":"28.2.2"}]}`

// dockerArchive is a `docker save` archive of one image tagged app:1.
func dockerArchive(t *testing.T) []byte {
	t.Helper()
	l := newLayout(t)
	l.index(l.image("amd64", tarOf(map[string]string{"x": "y"})))
	p := filepath.Join(t.TempDir(), "save.tar")
	tarDir(t, l.dir, p)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDaemon(t *testing.T) {
	archive := dockerArchive(t)
	podman := `{"Version":"4.3.1","Components":[{"Name":"Podman Engine","Version":"4.3.1"}]}`
	for _, tc := range []struct {
		name, version, ref string
		status             int
		want               string // "" = opens
	}{
		{"docker", dockerVersion, "app:1", 0, ""},
		{"podman", podman, "app:1", 0, ""},
		{"missing", dockerVersion, "nosuch:latest", 0, "no such image in Docker Engine 28.2.2 at unix://"},
		{"missing in podman", podman, "nosuch", 0, "no such image in Podman Engine 4.3.1 at unix://"},
		{"engine error", dockerVersion, "app:1", http.StatusInternalServerError, "Docker Engine 28.2.2 at unix://"},
		{"bad name", dockerVersion, "../x", 0, "want docker-daemon:NAME[:TAG]"},
		{"not json version", "oops", "app:1", 0, "no container engine answers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", fakeEngine(t, tc.version, archive, tc.status))
			spool := t.TempDir()
			img, err := Open("docker-daemon:"+tc.ref, Options{SpoolDir: spool})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err %v, want one line with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if b, err := readLayer(t, img.Layers[0]); err != nil || !bytes.Contains(b, []byte("x")) {
				t.Errorf("layer: %v", err)
			}
			if ents, _ := os.ReadDir(spool); len(ents) != 0 {
				t.Errorf("the spool file is named: %v", ents)
			}
		})
	}
}

// TestDaemonNoEngine: with nothing listening, the error names every
// address tried and why, in one line.
func TestDaemonNoEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	_, err := Open("docker-daemon:app:1", Options{})
	if !errors.Is(err, ErrNoEngine) || !strings.Contains(err.Error(), "unix://"+sock+" (no such file or directory)") {
		t.Errorf("err %v", err)
	}
	t.Setenv("DOCKER_HOST", "ssh://host")
	if _, err := Open("docker-daemon:app:1", Options{}); err == nil || !strings.Contains(err.Error(), "want unix:// or tcp://") {
		t.Errorf("ssh:// DOCKER_HOST: %v", err)
	}
}

// TestDaemonFallsBackToPodman: with DOCKER_HOST unset and no Docker
// socket, Podman's rootless socket under XDG_RUNTIME_DIR is asked.
func TestDaemonFallsBackToPodman(t *testing.T) {
	run := t.TempDir()
	defer func(s string) { dockerSocket = s }(dockerSocket)
	dockerSocket = "unix://" + filepath.Join(run, "no-docker.sock") // none, wherever the test runs
	addr := fakeEngine(t, `{"Version":"4.3.1","Components":[{"Name":"Podman Engine","Version":"4.3.1"}]}`, dockerArchive(t), 0)
	if err := os.MkdirAll(filepath.Join(run, "podman"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(strings.TrimPrefix(addr, "unix://"), filepath.Join(run, "podman", "podman.sock")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_HOST", "")
	os.Unsetenv("DOCKER_HOST")
	t.Setenv("XDG_RUNTIME_DIR", run)
	e, err := findEngine(context.Background())
	if err != nil || e.name != "Podman Engine 4.3.1" {
		t.Fatalf("engine %+v, %v", e, err)
	}
}

// TestDaemonTLS: with DOCKER_TLS_VERIFY, a tcp:// engine is spoken to
// over TLS, its certificate checked against DOCKER_CERT_PATH/ca.pem and
// cert.pem + key.pem given as the client's.
func TestDaemonTLS(t *testing.T) {
	var clientCerts int
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clientCerts = len(r.TLS.PeerCertificates)
		w.Write([]byte(dockerVersion))
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", srv.Certificate().Raw)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "cert.pem"), "CERTIFICATE", der)
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, filepath.Join(dir, "key.pem"), "PRIVATE KEY", kb)
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	t.Setenv("DOCKER_CERT_PATH", dir)
	e, err := dialEngine(context.Background(), "tcp://"+srv.Listener.Addr().String())
	if err != nil || e.name != "Docker Engine 28.2.2" || clientCerts != 1 {
		t.Fatalf("engine %+v, %v; client certificates sent: %d", e, err, clientCerts)
	}
	os.Remove(filepath.Join(dir, "ca.pem"))
	if _, err := dialEngine(context.Background(), "tcp://"+srv.Listener.Addr().String()); err == nil || !strings.Contains(err.Error(), "DOCKER_TLS_VERIFY") {
		t.Errorf("without ca.pem: %v", err)
	}
}

func writePEM(t *testing.T, p, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
