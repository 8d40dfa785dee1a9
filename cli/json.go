package cli

import (
	"encoding/json"
	"fmt"
)

func parseJSONArray(s string) ([]string, error) {
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("not a JSON array of strings: %w", err)
	}
	return a, nil
}
