package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/c2vm/c2vm/convert"
)

// terminalMeter gives live progress bars (bytes, rate, and ETA when the
// total is known) on w when it is a terminal, else nil: off a terminal
// the stage lines are all there is, and never a carriage return.
func terminalMeter(w io.Writer) convert.Meter {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(what string, total int64) io.WriteCloser {
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("c2vm: "+what),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprint(w, "\r\033[K") }),
		)
		return bar
	}
}
