module go-conn-sink-misbehave

go 1.24

require sluice.dev/sdk v0.1.0

replace sluice.dev/sdk => ../../../sdk/go
