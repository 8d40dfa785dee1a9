package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/c2vm/c2vm/internal/safeio"
)

// TransportDaemon reads an image from a running engine, as skopeo spells
// it: docker-daemon:NAME[:TAG] (or an image ID).
const TransportDaemon Transport = "docker-daemon"

// ErrNoEngine is returned when no Docker or Podman engine answers.
var ErrNoEngine = errors.New("no container engine answers")

// An engine is read through the Docker Engine API that Docker and
// Podman's `podman system service` both serve: GET /images/{name}/get is
// the `docker save` stream, a docker-archive the archive reader opens.
// A plain net/http client over the socket does it; the Docker SDK
// (github.com/docker/docker/client) would add its API types, the
// distribution and OpenTelemetry modules for three GETs.

// engine is an Engine API endpoint that answered: its client, address
// and what it calls itself ("Docker Engine 28.2.2", "Podman Engine
// 4.3.1").
type engine struct {
	client *http.Client
	base   string // http://HOST for tcp://, http://engine for a socket
	addr   string // as the user gives it: unix:///run/docker.sock
	name   string
}

// dockerSocket is Docker's default endpoint (a variable for tests).
var dockerSocket = "unix:///var/run/docker.sock"

// engineAddrs are the endpoints tried in order: $DOCKER_HOST alone when
// set, else Docker's socket, then Podman's (rootless, then rootful).
func engineAddrs() []string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return []string{h}
	}
	addrs := []string{dockerSocket}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		addrs = append(addrs, "unix://"+filepath.Join(d, "podman", "podman.sock"))
	}
	return append(addrs, "unix:///run/podman/podman.sock")
}

// findEngine returns the first endpoint that answers GET /version.
func findEngine(ctx context.Context) (*engine, error) {
	addrs := engineAddrs()
	var tried []string
	for _, a := range addrs {
		e, err := dialEngine(ctx, a)
		if err == nil {
			return e, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		tried = append(tried, a+" ("+dialReason(err)+")")
	}
	hint := "start Docker or `podman system service`, or set DOCKER_HOST"
	if len(addrs) == 1 {
		hint = "is DOCKER_HOST right?"
	}
	return nil, fmt.Errorf("%w at %s: %s", ErrNoEngine, strings.Join(tried, ", "), hint)
}

// dialReason is why an endpoint did not answer, without the URL and
// socket path an error of net/http repeats.
func dialReason(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return oneLineErr(err)
}

// dialEngine makes a client for addr (unix:// or tcp://) and asks the
// engine its name and version.
func dialEngine(ctx context.Context, addr string) (*engine, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	t := &http.Transport{ResponseHeaderTimeout: time.Minute}
	e := &engine{client: &http.Client{Transport: t}, addr: addr}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		t.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
		e.base = "http://engine"
	case "tcp":
		// Plain HTTP, as docker talks to tcp:// without DOCKER_TLS_VERIFY.
		e.base = "http://" + u.Host
		if os.Getenv("DOCKER_TLS_VERIFY") != "" {
			if t.TLSClientConfig, err = engineTLS(); err != nil {
				return nil, fmt.Errorf("%s: %w", addr, err)
			}
			e.base = "https://" + u.Host
		}
	default:
		return nil, fmt.Errorf("%s: %w", addr, fmt.Errorf("want unix:// or tcp://, not %s://", u.Scheme))
	}
	var v struct {
		Version    string
		Components []struct{ Name, Version string }
	}
	if err := e.getJSON(ctx, "/version", &v); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	e.name = "Docker Engine " + v.Version
	for _, c := range v.Components {
		if strings.Contains(c.Name, "Podman") {
			e.name = c.Name + " " + c.Version
		}
	}
	return e, nil
}

// engineTLS is the TLS docker uses with DOCKER_TLS_VERIFY: the engine's
// certificate checked against ca.pem, and cert.pem + key.pem as the
// client's, from $DOCKER_CERT_PATH, else ~/.docker.
func engineTLS() (*tls.Config, error) {
	dir := os.Getenv("DOCKER_CERT_PATH")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(home, ".docker")
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %w", err)
	}
	cfg := &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	if !cfg.RootCAs.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: %s holds no PEM certificate", filepath.Join(dir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		return nil, fmt.Errorf("DOCKER_TLS_VERIFY: client certificate: %w", err)
	}
	cfg.Certificates = []tls.Certificate{cert}
	return cfg, nil
}

// get requests path and returns the body of a 200 answer; any other
// status is an error carrying the engine's own message, wrapping
// ErrNoSuchImage for a 404.
func (e *engine) get(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+(&url.URL{Path: path}).EscapedPath(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	var msg struct{ Message string }
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &msg) != nil || msg.Message == "" {
		msg.Message = strings.TrimSpace(string(b))
	}
	err = fmt.Errorf("%s: %s", resp.Status, oneLineErr(errors.New(msg.Message)))
	if resp.StatusCode == http.StatusNotFound {
		err = fmt.Errorf("%w (%w)", ErrNoSuchImage, err)
	}
	return nil, err
}

func (e *engine) getJSON(ctx context.Context, path string, v any) error {
	body, err := e.get(ctx, path)
	if err != nil {
		return err
	}
	defer body.Close()
	return json.NewDecoder(io.LimitReader(body, maxJSON)).Decode(v)
}

// checkEngineName refuses what no engine names an image by before it
// goes into a URL.
func checkEngineName(name string) error {
	if name == "" || strings.ContainsAny(name, "?# \t\n\\") || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return fmt.Errorf("%w: want docker-daemon:NAME[:TAG] or docker-daemon:IMAGE-ID, not %q", ErrNotImage, name)
	}
	return nil
}

// openDaemonStore saves the image name from the first engine that
// answers into an unnamed temporary file in spoolDir ("" = the system's
// temp dir) and indexes it as a docker-archive. The `docker save` stream
// puts manifest.json after the layers (Docker 25+ writes blobs/ first,
// manifest.json and index.json at the end), so nothing is known of the
// image until the stream ends: it is spooled whole, where the output
// goes rather than /tmp (often a small tmpfs), and the archive's members
// are then read in place, as a docker-archive file's are.
func openDaemonStore(ctx context.Context, name, spoolDir string, meter func(string, int64) io.WriteCloser) (*tarStore, error) {
	if err := checkEngineName(name); err != nil {
		return nil, err
	}
	e, err := findEngine(ctx)
	if err != nil {
		return nil, err
	}
	s, err := e.save(ctx, name, spoolDir, meter)
	if errors.Is(err, ErrNoSuchImage) {
		return nil, fmt.Errorf("%w in %s at %s", ErrNoSuchImage, e.name, e.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", e.name, e.addr, err)
	}
	return s, nil
}

// save spools GET /images/{name}/get. GET /images/{name}/json first
// tells a missing image apart from a failed save, and gives the size the
// meter shows.
func (e *engine) save(ctx context.Context, name, spoolDir string, meter func(string, int64) io.WriteCloser) (*tarStore, error) {
	var info struct{ Size int64 }
	if err := e.getJSON(ctx, "/images/"+name+"/json", &info); err != nil {
		return nil, err
	}
	body, err := e.get(ctx, "/images/"+name+"/get")
	if err != nil {
		return nil, fmt.Errorf("saving: %w", err)
	}
	defer body.Close()
	f, err := os.CreateTemp(spoolDir, ".c2vm-save-*.tar")
	if errors.Is(err, fs.ErrNotExist) && spoolDir != "" { // made later, by the conversion
		f, err = os.CreateTemp("", ".c2vm-save-*.tar")
	}
	if err != nil {
		return nil, fmt.Errorf("spooling the saved image: %w", err)
	}
	os.Remove(f.Name()) // unnamed: gone however c2vm ends
	var src io.Reader = safeio.Reader(ctx, body)
	if meter != nil {
		m := meter("save "+name, info.Size)
		defer m.Close()
		src = io.TeeReader(src, m)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("saving: %w", err)
	}
	s, err := newTarStore(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("the saved image: %w", err)
	}
	return s, nil
}
