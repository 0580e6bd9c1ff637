package worker

import (
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/rs/zerolog"
)

// asynqLogger sends asynq's own messages to zerolog, one event per line.
type asynqLogger struct{ log zerolog.Logger }

func (l asynqLogger) Debug(args ...any) {
	l.log.Debug().Str("source", "asynq").Msg(fmt.Sprint(args...))
}
func (l asynqLogger) Info(args ...any) { l.log.Info().Str("source", "asynq").Msg(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any) { l.log.Warn().Str("source", "asynq").Msg(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) {
	l.log.Error().Str("source", "asynq").Msg(fmt.Sprint(args...))
}
func (l asynqLogger) Fatal(args ...any) {
	l.log.Fatal().Str("source", "asynq").Msg(fmt.Sprint(args...))
}

func asynqLevel(l zerolog.Level) asynq.LogLevel {
	switch {
	case l <= zerolog.DebugLevel:
		return asynq.DebugLevel
	case l == zerolog.InfoLevel:
		return asynq.InfoLevel
	case l == zerolog.WarnLevel:
		return asynq.WarnLevel
	default:
		return asynq.ErrorLevel
	}
}
