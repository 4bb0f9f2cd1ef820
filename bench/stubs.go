package main

import (
	"context"
	"errors"
	"log/slog"
)

func runScale(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	return nil, errors.New("todo")
}
func runAll(ctx context.Context, args []string, log *slog.Logger) (any, error) {
	return nil, errors.New("todo")
}
