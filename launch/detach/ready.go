package detach

import (
	"context"

	"github.com/c2vm/c2vm/launch/agent"
)

// ping waits for the agent at sock to answer: its hello, then a ping.
var ping = func(ctx context.Context, sock string) error {
	c, err := agent.Dial(ctx, sock)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Ping(ctx)
}
