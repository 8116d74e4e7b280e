package config

import "reflect"

// RestartRequired lists the fields that differ between old and next and
// that a running process cannot apply live: the listeners and where the
// secrets come from. Everything else (workers, queue, rate limit, cache,
// pool sizes and lifetimes, timeouts, log level) is applied on reload.
func RestartRequired(old, next Config) []string {
	var fields []string
	diff := func(field string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			fields = append(fields, field)
		}
	}
	diff("server.addr", old.Server.Addr, next.Server.Addr)
	diff("server.adminAddr", old.Server.AdminAddr, next.Server.AdminAddr)
	diff("server.enablePprof", old.Server.EnablePprof, next.Server.EnablePprof)
	diff("database.urlEnv", old.Database.URLEnv, next.Database.URLEnv)
	diff("cache.redis", old.Cache.Redis, next.Cache.Redis)
	diff("log.format", old.Log.Format, next.Log.Format)
	return fields
}

// KeepRestartFields returns next with every field RestartRequired covers
// taken from old: what a running process applies when it reloads next.
// Keep it in step with RestartRequired.
func KeepRestartFields(old, next Config) Config {
	next.Server.Addr = old.Server.Addr
	next.Server.AdminAddr = old.Server.AdminAddr
	next.Server.EnablePprof = old.Server.EnablePprof
	next.Database.URLEnv = old.Database.URLEnv
	next.Cache.Redis = old.Cache.Redis
	next.Log.Format = old.Log.Format
	return next
}
