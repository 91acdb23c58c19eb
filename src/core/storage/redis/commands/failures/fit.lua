-- fit: ARGV[4]: the rank to go on from. One step of applying the stored
-- bounds to what is held (fit_step). Replies {1 when more is left to do,
-- the rank to go on from}.
return fit_step(tonumber(ARGV[4]), function() end)
