package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Factory makes pion's scoped loggers (a logging.LoggerFactory): pion's
// traces and debug lines go to Log at debug level, its information and
// errors at theirs, and its warnings at Warn.
type Factory struct {
	Log *slog.Logger
	// Warn is the level of pion's warnings. The zero value is
	// slog.LevelInfo, for a server: pion warns of routine ICE events,
	// such as a check before the remote candidates arrive, once per
	// peer.
	Warn slog.Level
}

// NewLogger is the logger of one of pion's scopes, named in each line.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{log: f.Log.With("pion", scope), warn: f.Warn}
}

type logger struct {
	log  *slog.Logger
	warn slog.Level
}

func (l logger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l logger) Trace(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l logger) Tracef(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Debug(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l logger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Info(msg string)                   { l.logf(slog.LevelInfo, "%s", msg) }
func (l logger) Infof(format string, args ...any)  { l.logf(slog.LevelInfo, format, args...) }
func (l logger) Warn(msg string)                   { l.logf(l.warn, "%s", msg) }
func (l logger) Warnf(format string, args ...any)  { l.logf(l.warn, format, args...) }
func (l logger) Error(msg string)                  { l.logf(slog.LevelError, "%s", msg) }
func (l logger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
