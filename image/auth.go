package image

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Keychain finds registry credentials as skopeo and Docker do: the
// containers auth file first (containers-auth.json(5): $REGISTRY_AUTH_FILE,
// else $XDG_RUNTIME_DIR/containers/auth.json, where `skopeo login` and
// `podman login` write), then Docker's ~/.docker/config.json with its
// auths, credHelpers and credsStore (go-containerregistry's DefaultKeychain,
// which reads the containers file only when Docker's is absent).
var Keychain authn.Keychain = authn.NewMultiKeychain(containersKeychain{}, authn.DefaultKeychain)

// containersKeychain reads the "auths" of a containers auth file.
type containersKeychain struct{}

// containersAuthFile is where skopeo looks first (containers-auth.json(5)).
func containersAuthFile() string {
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "containers", "auth.json")
	}
	return ""
}

func (containersKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	p := containersAuthFile()
	if p == "" {
		return authn.Anonymous, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return authn.Anonymous, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading auth file: %w", err)
	}
	return lookupAuth(b, r.String(), r.RegistryStr(), p)
}

// lookupAuth finds the entry for a repository "REGISTRY/NS/REPO": the
// most specific key first (registry/ns/repo, registry/ns, registry), as
// containers-auth.json(5) says; "https://" and a path after a bare
// registry (Docker's old "https://index.docker.io/v1/") are ignored.
func lookupAuth(b []byte, repo, registry, file string) (authn.Authenticator, error) {
	var f struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("auth file %s: %w", file, err)
	}
	entries := map[string]string{}
	idTokens := map[string]string{}
	for k, v := range f.Auths {
		k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
		host, rest, _ := strings.Cut(k, "/")
		if rest == "v1/" || rest == "v2/" || rest == "v1" || rest == "v2" {
			rest = ""
		}
		// As go-containerregistry names the registry: podman and skopeo
		// save Docker Hub as "docker.io", ggcr asks for index.docker.io.
		if reg, err := name.NewRegistry(host); err == nil {
			host = reg.RegistryStr()
		}
		k = host
		if rest != "" {
			k += "/" + rest
		}
		entries[k], idTokens[k] = v.Auth, v.IdentityToken
	}
	for key := repo; ; {
		if a, ok := entries[key]; ok {
			return decodeAuth(a, idTokens[key], key, file)
		}
		i := strings.LastIndexByte(key, '/')
		if i < 0 || len(key) <= len(registry) {
			break
		}
		key = key[:i]
	}
	return authn.Anonymous, nil
}

func decodeAuth(a, idToken, key, file string) (authn.Authenticator, error) {
	if a == "" && idToken == "" {
		return authn.Anonymous, nil
	}
	cfg := authn.AuthConfig{IdentityToken: idToken}
	if a != "" {
		raw, err := base64.StdEncoding.DecodeString(a)
		if err != nil {
			return nil, fmt.Errorf("auth file %s: entry %s: %w", file, key, err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("auth file %s: entry %s: not base64 of USER:PASSWORD", file, key)
		}
		cfg.Username, cfg.Password = user, pass
	}
	return authn.FromConfig(cfg), nil
}
