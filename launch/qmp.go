package launch

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// Powerdown presses the power button of the VM whose QMP socket is sock.
func Powerdown(sock string) error { return powerdown(sock) }

// Quit ends the QEMU whose QMP socket is sock at once, as pulling the
// plug does.
func Quit(sock string) error {
	err := qmp(sock, "quit")
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return nil // QEMU went before its answer
	}
	return err
}

// powerdown asks QEMU over QMP (docs/interop/qmp-spec) to press the
// guest's power button: system_powerdown, the ACPI event on x86 and the
// GPIO key on arm64 virt.
func powerdown(sock string) error { return qmp(sock, "system_powerdown") }

// qmp runs one QMP command.
func qmp(sock, command string) error {
	conn, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("QMP: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // the greeting
		return fmt.Errorf("QMP greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", command} {
		if err := qmpExecute(conn, r, cmd); err != nil {
			return err
		}
	}
	return nil
}

// qmpExecute sends one command and waits for its return, skipping events.
func qmpExecute(conn net.Conn, r *bufio.Reader, cmd string) error {
	b, _ := json.Marshal(map[string]string{"execute": cmd})
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("QMP %s: %w", cmd, err)
	}
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		var reply struct {
			Return *json.RawMessage `json:"return"`
			Error  *struct {
				Desc string `json:"desc"`
			} `json:"error"`
		}
		if json.Unmarshal(line, &reply) != nil {
			continue
		}
		if reply.Error != nil {
			return fmt.Errorf("QMP %s: %s", cmd, reply.Error.Desc)
		}
		if reply.Return != nil {
			return nil
		}
	}
}
