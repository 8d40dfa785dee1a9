package plan

import (
	"fmt"
	"strconv"
	"strings"
)

// signals numbers Linux's signals as asm-generic does (x86, arm, arm64,
// riscv all use it), for the image config's STOPSIGNAL.
var signals = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
	"KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
	"STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
	"URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
	"POLL": 29, "PWR": 30, "SYS": 31,
}

// sigRTMin and sigRTMax bound the real-time signals as glibc and Docker
// see them (SIGRTMIN is 34 after glibc's two).
const sigRTMin, sigRTMax = 34, 64

// ParseSignal reads a signal as Docker's STOPSIGNAL takes it: "SIGTERM",
// "TERM", "15", "SIGRTMIN+3". "" is SIGTERM.
func ParseSignal(s string) (int, error) {
	if s == "" {
		return signals["TERM"], nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("signal %d: out of range 1-%d", n, sigRTMax)
		}
		return n, nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if n, ok := signals[name]; ok {
		return n, nil
	}
	for _, base := range []struct {
		prefix string
		n, dir int
	}{{"RTMIN", sigRTMin, 1}, {"RTMAX", sigRTMax, -1}} {
		rest, ok := strings.CutPrefix(name, base.prefix)
		if !ok {
			continue
		}
		off := 0
		if rest != "" {
			v, err := strconv.Atoi(rest)
			if err != nil || (v > 0) != (base.dir > 0) && v != 0 {
				break
			}
			off = v
		}
		if n := base.n + off; n >= sigRTMin && n <= sigRTMax {
			return n, nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
