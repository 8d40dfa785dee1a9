package kernel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"strings"
)

// ParseConfig reads a kernel .config: CONFIG_X=value lines; "# CONFIG_X
// is not set" and comments are skipped.
func ParseConfig(b []byte) map[string]string {
	cfg := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "CONFIG_") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			cfg[k] = strings.Trim(v, `"`)
		}
	}
	return cfg
}

// ikconfig finds the config a kernel built with CONFIG_IKCONFIG carries:
// gzip data between the "IKCFG_ST" and "IKCFG_ED" markers
// (scripts/extract-ikconfig).
func ikconfig(img []byte) []byte {
	start := bytes.Index(img, []byte("IKCFG_ST"))
	if start < 0 {
		return nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(img[start+8:]))
	if err != nil {
		return nil
	}
	zr.Multistream(false)
	b, err := readAll(zr, maxConfigSize, "IKCONFIG")
	if err != nil {
		return nil
	}
	return b
}
