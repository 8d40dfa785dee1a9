package detach

import (
	"context"
	"net"
)

// ping waits for the agent at sock to answer.
// TODO(exec): launch/agent's Dial and Ping; until then, QEMU's socket.
var ping = func(ctx context.Context, sock string) error {
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", sock)
	if err != nil {
		return err
	}
	return c.Close()
}
