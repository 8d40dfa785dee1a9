package cache

import (
	"path/filepath"
	"testing"
)

func TestDir(t *testing.T) {
	for _, tc := range []struct {
		name, cache, home, want string
		fails                   bool
	}{
		{name: "env wins", cache: "/c", home: "/h", want: "/c"},
		{name: "home default", home: "/h", want: filepath.Join("/h", ".cache", "c2vm")},
		{name: "no home", fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("C2VM_CACHE", tc.cache)
			t.Setenv("HOME", tc.home)
			got, err := Dir()
			if tc.fails {
				if err == nil {
					t.Fatalf("Dir() = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Dir() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
