package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sgvet/sgvet/reputation"
)

// providerNames lists the providers in the order their verdicts are shown.
var providerNames = []string{"metadefender", "abuseipdb", "virustotal", "greynoise", "blocklist"}

// reputationConfig is the part of config about the reputation providers.
type reputationConfig struct {
	// Workers is the number of concurrent requests to each provider.
	Workers int `yaml:"workers"`
	// FleetSize is how many workers share the providers' keys: each keeps to that share of
	// every provider's rate and daily quota, which are the keys'.
	FleetSize int `yaml:"fleet_size"`
	// Patience is the longest one batch of addresses waits for a provider: retry waits,
	// throttling and quota resets together.
	Patience time.Duration `yaml:"patience"`
	Cache    cacheConfig   `yaml:"cache"`
	// Providers holds each provider's settings.
	Providers providersConfig `yaml:"providers"`
	// Only lists the providers named with --providers; flag only.
	Only []string `yaml:"-"`
}

type cacheConfig struct {
	// Enabled turns the verdict cache on (--no-cache turns it off).
	Enabled bool `yaml:"enabled"`
	// File is the SQLite file; empty means verdicts.db in the user's cache directory.
	File string `yaml:"file"`
}

type providersConfig struct {
	MetaDefender serviceConfig    `yaml:"metadefender"`
	AbuseIPDB    abuseIPDBConfig  `yaml:"abuseipdb"`
	VirusTotal   virusTotalConfig `yaml:"virustotal"`
	GreyNoise    serviceConfig    `yaml:"greynoise"`
	Blocklist    blocklistConfig  `yaml:"blocklist"`
}

// serviceConfig is what every online provider has.
type serviceConfig struct {
	// Enabled: the provider is asked when its key is set. --providers overrides it.
	Enabled bool `yaml:"enabled"`
	// BaseURL is the API root, for proxies and self-hosted deployments.
	BaseURL string `yaml:"base_url"`
	// KeyEnv is the environment variable holding the API key.
	KeyEnv string `yaml:"key_env"`
	// Rate is requests per second, a number or "N/s", "N/m", "N/h".
	Rate rateValue `yaml:"rate"`
	// Burst is how many requests may go at once before Rate applies.
	Burst int `yaml:"burst"`
	// BatchSize is the most addresses per request, for providers with a bulk endpoint.
	BatchSize int `yaml:"batch_size"`
	// DailyQuota is the most lookups per UTC day; 0 means no limit.
	DailyQuota int `yaml:"daily_quota"`
	// CacheTTL is how long verdicts are reused; 0 disables caching for the provider.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// Timeout bounds each request, from connecting to the end of the reply.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a request that failed on a 5xx, a broken connection or a
	// timeout is retried.
	Retries int `yaml:"retries"`
	// MaxRetryWait is the longest wait between two retries.
	MaxRetryWait time.Duration `yaml:"max_retry_wait"`
}

type thresholdsConfig struct {
	Malicious  int `yaml:"malicious"`
	Suspicious int `yaml:"suspicious"`
}

type virusTotalThresholdsConfig struct {
	thresholdsConfig `yaml:",inline"`
	// TrustedReputation is the community reputation from which engines alone make an
	// address at most suspicious; 0 turns it off.
	TrustedReputation int `yaml:"trusted_reputation"`
}

type abuseIPDBConfig struct {
	serviceConfig `yaml:",inline"`
	// Thresholds are confidence scores from 0 to 100.
	Thresholds thresholdsConfig `yaml:"thresholds"`
	// MaxAgeDays is how far back reports count, 1 to 365.
	MaxAgeDays int `yaml:"max_age_days"`
	// BlockPrefix is the shortest prefix length /check-block is asked about; 0 disables it.
	BlockPrefix int `yaml:"block_prefix"`
}

type virusTotalConfig struct {
	serviceConfig `yaml:",inline"`
	// Thresholds are counts of engines, and the trusted community reputation.
	Thresholds virusTotalThresholdsConfig `yaml:"thresholds"`
}

type blocklistConfig struct {
	// Enabled: the lists are used when there are any.
	Enabled bool `yaml:"enabled"`
	// Files are the lists to load; --blocklist adds to them.
	Files []string `yaml:"files"`
}

func defaultReputationConfig() reputationConfig {
	day := 24 * time.Hour
	service := func(base, env string, rate rateValue, quota int) serviceConfig {
		return serviceConfig{Enabled: true, BaseURL: base, KeyEnv: env, Rate: rate, Burst: 1,
			DailyQuota: quota, CacheTTL: day, Timeout: 30 * time.Second, Retries: 3, MaxRetryWait: 30 * time.Second}
	}
	// The free tiers, as the services publish them (see config.example.yaml).
	md := service("https://api.metadefender.com/v4", "MDCLOUD_APIKEY", 9.0/3600, 4000)
	md.BatchSize = reputation.MetaDefenderMaxBatch
	return reputationConfig{
		Workers:   4,
		FleetSize: 1,
		Patience:  2 * time.Minute,
		Cache:     cacheConfig{Enabled: true},
		Providers: providersConfig{
			MetaDefender: md,
			AbuseIPDB: abuseIPDBConfig{
				serviceConfig: service("https://api.abuseipdb.com/api/v2", "ABUSEIPDB_API_KEY", 1, 1000),
				Thresholds:    thresholdsConfig{Malicious: 75, Suspicious: 25},
				MaxAgeDays:    30,
				BlockPrefix:   24,
			},
			VirusTotal: virusTotalConfig{
				serviceConfig: service("https://www.virustotal.com/api/v3", "VT_API_KEY", 4.0/60, 500),
				Thresholds: virusTotalThresholdsConfig{
					thresholdsConfig:  thresholdsConfig{Malicious: 2, Suspicious: 1},
					TrustedReputation: reputation.DefaultVirusTotalThresholds.TrustedReputation,
				},
			},
			GreyNoise: service("https://api.greynoise.io", "GREYNOISE_API_KEY", 1, 100),
			Blocklist: blocklistConfig{Enabled: true},
		},
	}
}

// validate checks the reputation settings; messages name the key as written in the file,
// and its line when the file set it.
func (c *reputationConfig) validate(cfg *config) error {
	if c.Workers < 1 || c.Workers > 256 {
		return cfg.keyErrorf("workers", "(--workers) must be between 1 and 256, not %d", c.Workers)
	}
	if c.FleetSize < 1 || c.FleetSize > 10000 {
		return cfg.keyErrorf("fleet_size", "(--fleet-size) must be between 1 and 10000, not %d", c.FleetSize)
	}
	if c.Patience <= 0 {
		return cfg.keyErrorf("patience", "must be more than 0, not %s", c.Patience)
	}
	p := &c.Providers
	for _, s := range []struct {
		name string
		cfg  *serviceConfig
	}{
		{"metadefender", &p.MetaDefender}, {"abuseipdb", &p.AbuseIPDB.serviceConfig},
		{"virustotal", &p.VirusTotal.serviceConfig}, {"greynoise", &p.GreyNoise},
	} {
		if err := s.cfg.validate("providers."+s.name, cfg); err != nil {
			return err
		}
	}
	if b := p.MetaDefender.BatchSize; b < 1 || b > reputation.MetaDefenderMaxBatch {
		return cfg.keyErrorf("providers.metadefender.batch_size", "must be between 1 and %d, not %d", reputation.MetaDefenderMaxBatch, b)
	}
	for _, th := range []struct {
		name string
		th   thresholdsConfig
	}{{"abuseipdb", p.AbuseIPDB.Thresholds}, {"virustotal", p.VirusTotal.Thresholds.thresholdsConfig}} {
		if th.th.Malicious < 1 || th.th.Suspicious < 1 || th.th.Suspicious > th.th.Malicious {
			return cfg.keyErrorf("providers."+th.name+".thresholds", "need 1 <= suspicious <= malicious, not suspicious %d and malicious %d", th.th.Suspicious, th.th.Malicious)
		}
	}
	if th := p.AbuseIPDB.Thresholds; th.Malicious > 100 {
		return cfg.keyErrorf("providers.abuseipdb.thresholds.malicious", "must be at most 100, not %d", th.Malicious)
	}
	if r := p.VirusTotal.Thresholds.TrustedReputation; r < 0 {
		return cfg.keyErrorf("providers.virustotal.thresholds.trusted_reputation", "must be 0 (off) or more, not %d", r)
	}
	if d := p.AbuseIPDB.MaxAgeDays; d < 1 || d > 365 {
		return cfg.keyErrorf("providers.abuseipdb.max_age_days", "must be between 1 and 365, not %d", d)
	}
	if b := p.AbuseIPDB.BlockPrefix; b != 0 && (b < 8 || b > 32) {
		return cfg.keyErrorf("providers.abuseipdb.block_prefix", "must be 0 (off) or between 8 and 32, not %d", b)
	}
	for _, name := range c.Only {
		if !slices.Contains(providerNames, name) {
			return usageErrorf("--providers: unknown provider %q (known: %s)", name, strings.Join(providerNames, ", "))
		}
	}
	return nil
}

func (s *serviceConfig) validate(key string, cfg *config) error {
	fail := func(sub, format string, args ...any) error { return cfg.keyErrorf(key+"."+sub, format, args...) }
	// The URL is shown only once it is known to carry no credentials.
	u, err := url.Parse(s.BaseURL)
	if err != nil {
		return fail("base_url", "is not a URL (it is not shown, in case it holds a secret)")
	}
	if u.User != nil || u.RawQuery != "" {
		return fail("base_url", "must not carry credentials or a query; keys are read from %s.key_env", key)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fail("base_url", "must be an https URL, not %q", s.BaseURL)
	}
	// The API key travels in a header: over plain http anyone on the path reads it. Only a
	// service on this machine (a local proxy, a test double) may be plain http.
	if u.Scheme != "https" && !loopbackHost(u.Hostname()) {
		return fail("base_url", "must be https, not %q: the API key travels with every request (plain http is allowed only for a loopback address)", s.BaseURL)
	}
	// The variable's name is printed when it is not set: a key written here by mistake
	// must not be. Keys are not all capitals; variable names are, by convention.
	if !envName.MatchString(s.KeyEnv) {
		like, _ := fieldByKey(reflect.ValueOf(defaultConfig()), key+".key_env")
		return fail("key_env", "must name an environment variable in capitals, digits and underscores, like %s (the value is not shown, in case it is the key itself)", like.String())
	}
	switch {
	case !(s.Rate > 0):
		return fail("rate", "must be more than 0")
	case s.Burst < 1:
		return fail("burst", "must be at least 1, not %d", s.Burst)
	case s.DailyQuota < 0:
		return fail("daily_quota", "must not be negative (0 means no limit), not %d", s.DailyQuota)
	case s.CacheTTL < 0:
		return fail("cache_ttl", "must not be negative (0 disables caching), not %s", s.CacheTTL)
	case s.Timeout <= 0:
		return fail("timeout", "must be more than 0")
	case s.Retries < 0 || s.Retries > 10:
		return fail("retries", "must be between 0 and 10, not %d", s.Retries)
	case s.MaxRetryWait <= 0:
		return fail("max_retry_wait", "must be more than 0")
	}
	return nil
}

// envName matches an environment variable's name as key_env must give it.
var envName = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// rateValue is a rate in requests per second. YAML gives it as a number of requests per
// second, or as "N/s", "N/m" or "N/h".
type rateValue float64

func (r *rateValue) UnmarshalYAML(n *yaml.Node) error {
	s, err := scalarText(n, "a rate")
	if err != nil {
		return err
	}
	v, err := parseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

func parseRate(s string) (rateValue, error) {
	num, unit, hasUnit := strings.Cut(strings.TrimSpace(s), "/")
	per := 1.0
	if hasUnit {
		switch strings.TrimSpace(unit) {
		case "s", "sec", "second":
		case "m", "min", "minute":
			per = 60
		case "h", "hour":
			per = 3600
		default:
			return 0, fmt.Errorf("rate %q: the unit must be s, m or h", s)
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	// NaN passes every comparison but makes no rate: it is refused by name.
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 || f > 1e6 {
		return 0, fmt.Errorf("rate %q must be a positive number of requests per second, or N/s, N/m or N/h", s)
	}
	return rateValue(f / per), nil
}

// providerSetup is one provider ready to use, with the policy the Vetter keeps for it.
type providerSetup struct {
	provider reputation.Provider
	policy   reputation.Policy
}

// expireCache deletes, at the end of a run, the verdicts of the run's providers that their
// cache_ttl no longer lets a run reuse, and their old daily usage, so that the cache holds
// what the next runs may use. It gives up once ctx is done.
func expireCache(ctx context.Context, cache *reputation.Cache, ttls map[string]time.Duration, log *slog.Logger) {
	now := time.Now()
	for _, name := range slices.Sorted(maps.Keys(ttls)) {
		n, err := cache.Expire(ctx, name, ttls[name], now)
		if err != nil {
			log.Warn("expired verdicts not purged from the cache", "provider", name, "err", err)
			return
		}
		if n > 0 {
			log.Debug("purged expired verdicts from the cache", "provider", name, "verdicts", n)
		}
	}
}

// newVetter builds the providers the configuration enables and a Vetter over them. A
// provider whose key is not set is skipped with one log line, unless --providers named it,
// which is an error. The returned function purges the cache of expired verdicts and
// closes it; it may be called more than once.
func newVetter(ctx context.Context, cfg config, log *slog.Logger) (*reputation.Vetter, func() error, error) {
	rc := cfg.Reputation
	named := func(name string) bool { return slices.Contains(rc.Only, name) }
	wanted := func(name string, enabled bool) bool {
		if len(rc.Only) > 0 {
			return named(name)
		}
		return enabled
	}
	var (
		setups  []providerSetup
		skipped []string
	)
	serviceFor := func(name string, s serviceConfig, keyOptional bool) (reputation.ServiceConfig, bool, error) {
		if !wanted(name, s.Enabled) {
			return reputation.ServiceConfig{}, false, nil
		}
		key := strings.TrimSpace(os.Getenv(s.KeyEnv))
		if key == "" && !(keyOptional && named(name)) {
			if named(name) {
				return reputation.ServiceConfig{}, false, usageErrorf("--providers names %s, but %s is not set", name, s.KeyEnv)
			}
			skipped = append(skipped, fmt.Sprintf("%s (%s)", name, s.KeyEnv))
			return reputation.ServiceConfig{}, false, nil
		}
		return reputation.ServiceConfig{
			BaseURL: s.BaseURL, Key: key, KeyEnv: s.KeyEnv, BatchSize: s.BatchSize, Timeout: s.Timeout,
			Conns: rc.Workers, Log: log,
		}, true, nil
	}
	// A key's rate and daily quota are shared by the fleet of workers using it: each takes
	// its share, and keeps reading the services' rate-limit headers and pausing on a 429.
	fleet := max(rc.FleetSize, 1)
	policy := func(s serviceConfig) reputation.Policy {
		quota := s.DailyQuota
		if quota > 0 {
			quota = max(quota/fleet, 1)
		}
		return reputation.Policy{
			DailyQuota: quota, CacheTTL: s.CacheTTL, Rate: float64(s.Rate) / float64(fleet), Burst: max(s.Burst/fleet, 1),
			Retries: s.Retries, MaxRetryWait: s.MaxRetryWait,
		}
	}
	p := rc.Providers
	if sc, ok, err := serviceFor("metadefender", p.MetaDefender, false); err != nil {
		return nil, nil, err
	} else if ok {
		setups = append(setups, providerSetup{reputation.NewMetaDefender(sc), policy(p.MetaDefender)})
	}
	if sc, ok, err := serviceFor("abuseipdb", p.AbuseIPDB.serviceConfig, false); err != nil {
		return nil, nil, err
	} else if ok {
		block := p.AbuseIPDB.BlockPrefix
		if block == 0 {
			block = -1
		}
		a := reputation.NewAbuseIPDB(sc, reputation.AbuseIPDBConfig{
			Thresholds:  reputation.AbuseIPDBThresholds(p.AbuseIPDB.Thresholds),
			MaxAgeDays:  p.AbuseIPDB.MaxAgeDays,
			BlockPrefix: block,
		})
		setups = append(setups, providerSetup{a, policy(p.AbuseIPDB.serviceConfig)})
	}
	if sc, ok, err := serviceFor("virustotal", p.VirusTotal.serviceConfig, false); err != nil {
		return nil, nil, err
	} else if ok {
		th := p.VirusTotal.Thresholds
		vt := reputation.NewVirusTotal(sc, reputation.VirusTotalThresholds{
			Malicious: th.Malicious, Suspicious: th.Suspicious, TrustedReputation: th.TrustedReputation,
		})
		setups = append(setups, providerSetup{vt, policy(p.VirusTotal.serviceConfig)})
	}
	// GreyNoise answers without a key, at a lower limit: it is asked keyless only when
	// --providers names it.
	if sc, ok, err := serviceFor("greynoise", p.GreyNoise, true); err != nil {
		return nil, nil, err
	} else if ok {
		setups = append(setups, providerSetup{reputation.NewGreyNoise(sc), policy(p.GreyNoise)})
	}
	if wanted("blocklist", p.Blocklist.Enabled) {
		files := p.Blocklist.Files
		if len(files) == 0 && named("blocklist") {
			return nil, nil, usageErrorf("--providers names blocklist, but no list is given: use --blocklist FILE")
		}
		if len(files) > 0 {
			bp, err := loadBlocklists(files)
			if err != nil {
				return nil, nil, err
			}
			setups = append(setups, providerSetup{provider: bp})
		}
	}
	if len(skipped) > 0 && len(setups) > 0 {
		log.Info("providers skipped, their API keys are not set: " + strings.Join(skipped, ", "))
	}
	if len(setups) == 0 {
		return nil, nil, &exitError{code: exitUsage, err: errNoProvider}
	}

	opts := reputation.Options{Workers: rc.Workers, Patience: rc.Patience, Log: log, Policies: map[string]reputation.Policy{}}
	providers := make([]reputation.Provider, len(setups))
	for i, s := range setups {
		providers[i] = s.provider
		opts.Policies[s.provider.Name()] = s.policy
	}
	closeCache := func() error { return nil }
	// Offline lists need neither the cache nor a quota count: no file is opened for them.
	needsCache := slices.ContainsFunc(setups, func(s providerSetup) bool {
		return s.policy.CacheTTL > 0 || s.policy.DailyQuota > 0
	})
	if rc.Cache.Enabled && needsCache {
		path, err := cachePath(rc.Cache.File)
		if err != nil {
			return nil, nil, err
		}
		cache, err := reputation.OpenCache(ctx, path, log)
		if err != nil {
			return nil, nil, usageErrorf("--cache: %v", err)
		}
		opts.Cache = cache
		// The function holds the cache time of each provider rather than the providers,
		// so that a large blocklist is not kept in memory until the cache is closed.
		ttls := map[string]time.Duration{}
		for _, s := range setups {
			if s.policy.CacheTTL > 0 {
				ttls[s.provider.Name()] = s.policy.CacheTTL
			}
		}
		var once sync.Once
		var closeErr error
		closeCache = func() error {
			once.Do(func() {
				expireCache(ctx, cache, ttls, log)
				closeErr = cache.Close()
			})
			return closeErr
		}
	}
	return reputation.NewVetter(providers, opts), closeCache, nil
}

// cachePath returns the cache file: the one configured, or verdicts.db in the user's cache
// directory.
func cachePath(file string) (string, error) {
	if file != "" {
		return file, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", usageErrorf("no cache directory (%v): give --cache FILE or --no-cache", err)
	}
	return filepath.Join(dir, "sgvet", "verdicts.db"), nil
}

// loadBlocklists loads the list files into one provider. Errors name the file and line.
func loadBlocklists(files []string) (*reputation.BlocklistProvider, error) {
	lists, err := reputation.LoadBlocklists(files...)
	if err != nil {
		return nil, usageErrorf("--blocklist: %v", err)
	}
	return reputation.NewBlocklistProvider(lists...), nil
}

// errNoProvider is newVetter's error when no provider can be asked.
var errNoProvider = errors.New("no reputation provider to ask: set MDCLOUD_APIKEY (or ABUSEIPDB_API_KEY, VT_API_KEY, GREYNOISE_API_KEY), or give --blocklist FILE")

func isNoProvider(err error) bool { return errors.Is(err, errNoProvider) }
