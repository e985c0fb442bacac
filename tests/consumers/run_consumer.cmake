# Configures, builds and runs one consumer project (cmake -P script, called by ctest).
# Inputs: SOURCE, BINARY, PREFIX_PATH, STEER_SOURCE_DIR, LAUNCHER; optional: MODEL (the program's
# argument), CONFIGURE_ARGS (';'-separated extra configure arguments, e.g. -DCMAKE_CXX_STANDARD=20).
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer step failed (${result}): ${ARGN}")
  endif()
endfunction()

file(REMOVE_RECURSE ${BINARY})
# Not through run(): its ARGN would split the ';'-separated prefix path into arguments.
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY} -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_PREFIX_PATH=${PREFIX_PATH}" -DSTEER_SOURCE_DIR=${STEER_SOURCE_DIR}
    -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER} ${CONFIGURE_ARGS} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "configuring the consumer ${SOURCE} failed (${result})")
endif()
run(${CMAKE_COMMAND} --build ${BINARY} -j 2)
run(${BINARY}/consumer ${MODEL})
