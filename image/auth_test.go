package image

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

// TestLookupAuth: the most specific containers auth.json key wins
// (containers-auth.json(5)); Docker's old URL-style keys still match.
func TestLookupAuth(t *testing.T) {
	const (
		up = "dTpw" // base64("u:p")
		xy = "eDp5" // base64("x:y")
	)
	for _, tc := range []struct {
		name, file, repo, user string
		bad                    bool
	}{
		{"registry key", `{"auths":{"r.example":{"auth":"` + up + `"}}}`, "r.example/ns/app", "u", false},
		{"namespace beats registry", `{"auths":{"r.example":{"auth":"` + xy + `"},"r.example/ns":{"auth":"` + up + `"}}}`, "r.example/ns/app", "u", false},
		{"repository beats namespace", `{"auths":{"r.example/ns":{"auth":"` + xy + `"},"r.example/ns/app":{"auth":"` + up + `"}}}`, "r.example/ns/app", "u", false},
		{"other namespace ignored", `{"auths":{"r.example/other":{"auth":"` + up + `"}}}`, "r.example/ns/app", "", false},
		{"https URL key", `{"auths":{"https://r.example/v1/":{"auth":"` + up + `"}}}`, "r.example/ns/app", "u", false},
		{"other registry", `{"auths":{"q.example":{"auth":"` + up + `"}}}`, "r.example/ns/app", "", false},
		{"docker.io as podman saves it", `{"auths":{"docker.io":{"auth":"` + up + `"}}}`, "index.docker.io/library/alpine", "u", false},
		{"Docker's old Hub URL", `{"auths":{"https://index.docker.io/v1/":{"auth":"` + up + `"}}}`, "index.docker.io/library/alpine", "u", false},
		{"not base64", `{"auths":{"r.example":{"auth":"!!"}}}`, "r.example/app", "", true},
		{"no colon", `{"auths":{"r.example":{"auth":"dXNlcg=="}}}`, "r.example/app", "", true},
		{"not JSON", `{`, "r.example/app", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			registry, _, _ := strings.Cut(tc.repo, "/")
			a, err := lookupAuth([]byte(tc.file), tc.repo, registry, "auth.json")
			if tc.bad {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := a.Authorization()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Username != tc.user || (tc.user == "" && a != authn.Anonymous) {
				t.Errorf("user %q (%v), want %q", cfg.Username, a, tc.user)
			}
		})
	}
}
