package main

import (
	"context"
	"path/filepath"

	"time"

	"github.com/autodiscover-proxy/autodiscover-proxy/config"
	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
)

// configSettle is how long the config's files must stay unchanged after a
// change before they are read: an editor or kubelet writes a file, or a
// ConfigMap's files, in several steps.
const configSettle = 500 * time.Millisecond

// watchConfig reloads the config when one of its files changes, exactly
// as SIGHUP does (a bad file keeps the old config and says why), until
// ctx ends. It watches directories, not files: editors replace a file by
// renaming a new one over it, Kubernetes swaps a ConfigMap's ..data
// symlink, and a new file under an include: directory may match. A change
// that leaves every file's bytes as they were (the config's Hash) is no
// reload.
func (s *service) watchConfig(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	watched := map[string]bool{}
	watch := func(cfg *config.Config) {
		dirs := []string{filepath.Dir(s.cfgFile)}
		for _, f := range cfg.Sources {
			dirs = append(dirs, filepath.Dir(f))
		}
		for _, d := range append(dirs, cfg.IncludeDirs...) {
			if !watched[d] {
				if err := w.Add(d); err != nil {
					s.log.Warn("cannot watch a config directory: changes there need SIGHUP", "dir", d, "err", err)
					continue
				}
				watched[d] = true
			}
		}
	}
	watch(s.srv.Config())
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events:
			if ev.Op != fsnotify.Chmod {
				settle.Reset(configSettle)
			}
		case err := <-w.Errors:
			s.log.Warn("watching the config files", "err", err)
		case <-settle.C:
			if s.reloadIfChanged(ctx) {
				watch(s.srv.Config())
			}
		}
	}
}

// reloadIfChanged reloads when the config's files read differently from
// the config in use, and reports whether it tried.
func (s *service) reloadIfChanged(ctx context.Context) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg, err := s.load()
	if err == nil && cfg.Hash == s.srv.Config().Hash {
		return false
	}
	s.log.Info("the config files changed: reloading")
	s.applyLocked(ctx, cfg, err) // what it read, not read again
	return true
}

// configInfo is autodiscover_config_info: always 1, the loaded config's
// hash as a label, so that a dashboard shows replicas that disagree.
type configInfo struct{ s *service }

var configInfoDesc = prometheus.NewDesc("autodiscover_config_info",
	"The config being served, as its hash (of every file read); always 1.", []string{"hash"}, nil)

func (c configInfo) Describe(ch chan<- *prometheus.Desc) { ch <- configInfoDesc }

func (c configInfo) Collect(ch chan<- prometheus.Metric) {
	if cfg := c.s.srv.Config(); cfg != nil {
		ch <- prometheus.MustNewConstMetric(configInfoDesc, prometheus.GaugeValue, 1, cfg.Hash)
	}
}
