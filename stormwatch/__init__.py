# Empty on purpose: `import stormwatch.wire` must load nothing else of ours.
