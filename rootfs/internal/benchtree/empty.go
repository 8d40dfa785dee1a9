package benchtree

import (
	"archive/tar"
	"io"
	"strconv"
)

// WriteEmpty writes a tar of n empty files, 1000 to a directory
// ("d0/f0" ... "d0/f999", "d1/f1000" ...), each directory before its
// files: the per-file cost of a tree, with no data to compress.
func WriteEmpty(w io.Writer, n int) error {
	tw := tar.NewWriter(w)
	for i := range n {
		dir := "d" + strconv.Itoa(i/1000)
		if i%1000 == 0 {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: when}); err != nil {
				return err
			}
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: dir + "/f" + strconv.Itoa(i), Mode: 0o644, ModTime: when}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	return tw.Close()
}
