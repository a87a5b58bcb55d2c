package rules

import (
	"encoding/json"
	"io"
	"log/slog"
)

func jsonDecoder(r io.Reader) *json.Decoder { return json.NewDecoder(r) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
