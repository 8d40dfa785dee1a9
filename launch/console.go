package launch

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

var (
	statusRE   = regexp.MustCompile(regexp.QuoteMeta(plan.StatusLine) + `(\d+)`)
	kernelLine = regexp.MustCompile(`^\[\s*\d+\.\d+\]`)
)

// console is what follow learnt from the VM's console.
type console struct {
	status int      // the container's exit status, -1 when none came
	last   []string // the last lastLines lines
	panic  string   // the kernel's panic message, from "Kernel panic"
}

const lastLines = 20

// follow copies the container's output to o.Stdout, the init's messages
// to o.Stderr, drops kernel lines unless debugging, and calls onStatus
// when the status line arrives.
func follow(r io.Reader, o Options, onStatus func()) console {
	c := console{status: -1}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.line(line, o, onStatus)
		}
		if err != nil {
			return c
		}
	}
}

func (c *console) line(line string, o Options, onStatus func()) {
	text := strings.TrimRight(line, "\r\n")
	c.last = append(c.last, text)
	if len(c.last) > lastLines {
		c.last = c.last[1:]
	}
	// A panic's stack trace follows its message and pushes it out of
	// c.last; the first message is the one that says why.
	if i := strings.Index(text, "Kernel panic"); i >= 0 && c.panic == "" {
		c.panic = strings.TrimSpace(text[i:])
	}
	m := statusRE.FindStringSubmatchIndex(text)
	if m == nil {
		route(text, strings.HasSuffix(line, "\n"), o)
		return
	}
	if c.status < 0 {
		onStatus()
	}
	c.status, _ = strconv.Atoi(text[m[2]:m[3]])
	if m[0] > 0 {
		io.WriteString(o.Stdout, text[:m[0]])
	}
}

func route(text string, nl bool, o Options) {
	if nl {
		text += "\n"
	}
	switch {
	case o.Debug:
		io.WriteString(o.Stdout, text)
	case kernelLine.MatchString(text):
	case strings.HasPrefix(text, plan.LogPrefix), strings.HasPrefix(text, plan.ErrorLine):
		io.WriteString(o.Stderr, text)
	default:
		io.WriteString(o.Stdout, text)
	}
}
